// containerd's API as egress reads it, against a real containerd started by
// the test (tests/testing/containerd.h) with an image imported offline:
// containers labelled as CRI labels pods are listed with their image,
// labels, pod identity and running pid.
#include "userspace/containerd/containerd_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/containerd.h"
#include "tests/testing/status_matchers.h"
#include "userspace/containerd/containerd_watcher.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

// The unified (cgroup v2) line of /proc/PID/cgroup: "0::/k8s.io/ID".
std::string UnifiedCgroupOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

TEST(ContainerdClientTest, ListsPodsWithTheirLabelsImageAndPid) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Containerd> ctd, Containerd::Start());
  const std::string ns = containerd::kKubernetesNamespace;
  ASSERT_OK(ctd->ImportBusyboxImage(ns, "egress.test/busybox:1"));
  ASSERT_OK_AND_ASSIGN(pid_t web,
                       ctd->Run(ns, "web-1", "egress.test/busybox:1",
                                {{"io.kubernetes.pod.namespace", "shop"},
                                 {"io.kubernetes.pod.name", "web-7d9"},
                                 {"io.kubernetes.container.name", "nginx"},
                                 {"app", "web"}},
                                {"/bin/busybox", "sleep", "60"}));
  ASSERT_OK_AND_ASSIGN(pid_t db,
                       ctd->Run(ns, "db-1", "egress.test/busybox:1",
                                {{"io.kubernetes.pod.namespace", "shop"},
                                 {"io.kubernetes.pod.name", "db-0"},
                                 {"app", "db"}},
                                {"/bin/busybox", "sleep", "60"}));
  containerd::ContainerdClient client(ctd->socket());
  ASSERT_OK_AND_ASSIGN(std::vector<containerd::ContainerdContainer> all,
                       client.List(ns));
  ASSERT_EQ(all.size(), 2u);
  for (const auto& c : all) {
    const bool is_web = c.id == "web-1";
    EXPECT_EQ(c.image, "egress.test/busybox:1");
    EXPECT_TRUE(c.running) << c.id;
    EXPECT_EQ(c.pid, static_cast<uint32_t>(is_web ? web : db));
    const containerd::PodIdentity pod = containerd::PodOf(c);
    EXPECT_EQ(pod.namespace_name, "shop");
    EXPECT_EQ(pod.pod, is_web ? "web-7d9" : "db-0");
    EXPECT_EQ(pod.container, is_web ? "nginx" : "");
    EXPECT_EQ(c.labels.at("app"), is_web ? "web" : "db");
    // Where its processes run, for enforcement: the container's own cgroup.
    EXPECT_THAT(UnifiedCgroupOf(c.pid), HasSubstr(c.id));
  }
  // Another namespace holds none of them.
  ASSERT_OK_AND_ASSIGN(auto other, client.List("default"));
  EXPECT_TRUE(other.empty());
  // A container that stopped is listed without a running task.
  ASSERT_OK(ctd->Ctr(ns, {"task", "kill", "-s", "SIGKILL", "db-1"}).status());
  bool stopped = false;
  for (int i = 0; i < 50 && !stopped; ++i) {
    ASSERT_OK_AND_ASSIGN(all, client.List(ns));
    for (const auto& c : all) stopped |= c.id == "db-1" && !c.running;
    if (!stopped) usleep(100'000);
  }
  EXPECT_TRUE(stopped);
}

// The watcher's view: a pod's labels (on its sandbox, as CRI puts them) on
// each of its containers, pod identity, and the container's own cgroup; a
// container started later is seen within a poll.
TEST(ContainerdWatcherTest, PodsWithTheirSandboxLabelsAndCgroups) {
  // The pod's cgroup, named as the kubelet names one (pod<uid>): a container
  // with CRI's labels elsewhere is no pod. Made first, so that it goes after
  // containerd and its containers.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> kubepods,
                       TestCgroup::Create("ctrd-watch"));
  const std::string pod_cgroup = kubepods->relative_path() + "/podweb7d9";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Containerd> ctd, Containerd::Start());
  const std::string ns = containerd::kKubernetesNamespace;
  ASSERT_OK(ctd->ImportBusyboxImage(ns, "egress.test/busybox:1"));
  const std::map<std::string, std::string> pod = {
      {"io.kubernetes.pod.namespace", "shop"},
      {"io.kubernetes.pod.name", "web-7d9"}};
  std::map<std::string, std::string> sandbox = pod;
  sandbox["io.cri-containerd.kind"] = "sandbox";
  sandbox["app"] = "web";
  ASSERT_OK(ctd->Run(ns, "sandbox-1", "egress.test/busybox:1", sandbox,
                     {"/bin/busybox", "sleep", "60"}, pod_cgroup + "/sandbox-1")
                .status());
  std::map<std::string, std::string> app = pod;
  app["io.kubernetes.container.name"] = "nginx";
  ASSERT_OK(ctd->Run(ns, "app-1", "egress.test/busybox:1", app,
                     {"/bin/busybox", "sleep", "60"}, pod_cgroup + "/app-1")
                .status());
  std::atomic<int> changes{0};
  containerd::ContainerdWatcherOptions o;
  o.socket = ctd->socket();
  o.poll = absl::Milliseconds(100);
  o.pid_cgroup = [](int pid) -> absl::StatusOr<std::string> {
    return UnifiedCgroupOf(pid);
  };
  o.changed = [&changes] { ++changes; };
  auto watcher = containerd::ContainerdWatcher::Start(o);
  std::vector<workloads::Container> seen = watcher->Running();
  ASSERT_EQ(seen.size(), 2u) << watcher->Problem();
  const workloads::Container& nginx = seen[0];  // by id: app-1 first
  EXPECT_EQ(nginx.id, "app-1");
  EXPECT_EQ(nginx.name, "nginx");
  EXPECT_EQ(nginx.pod_namespace, "shop");
  EXPECT_EQ(nginx.pod_name, "web-7d9");
  EXPECT_EQ(nginx.labels.at("app"), "web");  // from the sandbox
  EXPECT_THAT(nginx.cgroup, HasSubstr("app-1"));
  // A new container is seen at the next poll.
  ASSERT_OK(ctd->Run(ns, "app-2", "egress.test/busybox:1", app,
                     {"/bin/busybox", "sleep", "60"}, pod_cgroup + "/app-2")
                .status());
  for (int i = 0; i < 50 && watcher->Running().size() < 3; ++i) {
    usleep(100'000);
  }
  EXPECT_EQ(watcher->Running().size(), 3u);
  EXPECT_GE(changes.load(), 1);
  EXPECT_EQ(watcher->Problem(), "");
}

TEST(ContainerdClientTest, ASocketNobodyServesIsUnavailableAndNamed) {
  containerd::ContainerdClient client("/tmp/egress-no-containerd.sock",
                                      absl::Milliseconds(300));
  auto listed = client.List("k8s.io");
  ASSERT_EQ(listed.status().code(), absl::StatusCode::kUnavailable)
      << listed.status();
  EXPECT_THAT(std::string(listed.status().message()),
              HasSubstr("/tmp/egress-no-containerd.sock"));
}

}  // namespace
}  // namespace egress::testing
