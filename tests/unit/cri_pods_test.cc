// Pods from the labels CRI writes, under containerd's CRI plugin and under
// cri-dockerd (Kubernetes on Docker Engine): each container learns its pod,
// its name in the pod spec and its pod's labels, kept on the sandbox.
#include "userspace/workloads/cri_pods.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress::workloads {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::Pair;

Container Made(const std::string& id, policy::Labels labels) {
  Container c;
  c.id = id;
  c.name = "k8s_" + id;  // what cri-dockerd names a Docker container
  c.labels = std::move(labels);
  c.running = true;
  return c;
}

policy::Labels PodLabels(const std::string& ns, const std::string& pod) {
  return {{"io.kubernetes.pod.namespace", ns},
          {"io.kubernetes.pod.name", pod},
          {"io.kubernetes.pod.uid", pod + "-uid"}};
}

// A pod as `kind_key`/`sandbox`/`container` label it: its sandbox with the
// pod's labels, and one app container named `app`.
std::vector<Container> Pod(const std::string& ns, const std::string& name,
                           const policy::Labels& pod_labels,
                           const std::string& kind_key,
                           const std::string& sandbox,
                           const std::string& container) {
  policy::Labels s = PodLabels(ns, name);
  s[kind_key] = sandbox;
  s.insert(pod_labels.begin(), pod_labels.end());
  policy::Labels a = PodLabels(ns, name);
  a[kind_key] = container;
  a["io.kubernetes.container.name"] = "app";
  return {Made(name + "-sandbox", s), Made(name + "-app", a)};
}

TEST(CriPodsTest, DockerAndContainerdPodsGetTheirSandboxLabels) {
  for (const auto& [key, sandbox, container] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"io.kubernetes.docker.type", "podsandbox", "container"},
           {"io.cri-containerd.kind", "sandbox", "container"}}) {
    std::vector<Container> all =
        Pod("shop", "web-7d9", {{"app", "web"}}, key, sandbox, container);
    std::vector<Container> db =
        Pod("shop", "db-0", {{"app", "db"}}, key, sandbox, container);
    all.insert(all.end(), db.begin(), db.end());
    JoinCriPods(all);
    ASSERT_EQ(all.size(), 4u);
    const Container& web_app = all[1];
    EXPECT_EQ(web_app.pod_namespace, "shop") << key;
    EXPECT_EQ(web_app.pod_name, "web-7d9");
    EXPECT_EQ(web_app.name, "app");  // the pod spec's, not k8s_...
    EXPECT_THAT(web_app.labels, Contains(Pair("app", "web"))) << key;
    EXPECT_THAT(all[3].labels, Contains(Pair("app", "db")));
    EXPECT_THAT(all[3].labels, Not(Contains(Pair("app", "web"))));
    // The sandbox keeps its own name and is a member of its pod.
    EXPECT_EQ(all[0].name, "k8s_web-7d9-sandbox");
    EXPECT_EQ(all[0].pod_name, "web-7d9");
    EXPECT_TRUE(IsCriSandbox(all[0].labels));
    EXPECT_FALSE(IsCriSandbox(web_app.labels));
  }
}

TEST(CriPodsTest, OwnLabelsWinAndOtherContainersAreUntouched) {
  std::vector<Container> all =
      Pod("shop", "web", {{"tier", "front"}}, "io.kubernetes.docker.type",
          "podsandbox", "container");
  all[1].labels["tier"] = "own";
  all.push_back(Made("plain", {{"tier", "front"}}));
  const Container plain = all.back();
  JoinCriPods(all);
  EXPECT_THAT(all[1].labels, Contains(Pair("tier", "own")));
  EXPECT_EQ(all.back(), plain);
}

TEST(CriPodsTest, SameNameInAnotherNamespaceIsAnotherPod) {
  std::vector<Container> all =
      Pod("shop", "web", {{"app", "web"}}, "io.cri-containerd.kind", "sandbox",
          "container");
  std::vector<Container> other =
      Pod("staging", "web", {{"app", "canary"}}, "io.cri-containerd.kind",
          "sandbox", "container");
  all.insert(all.end(), other.begin(), other.end());
  JoinCriPods(all);
  EXPECT_THAT(all[1].labels, Contains(Pair("app", "web")));
  EXPECT_THAT(all[3].labels, Contains(Pair("app", "canary")));
  EXPECT_EQ(all[3].pod_namespace, "staging");
}

TEST(CriPodsTest, AContainerWhoseSandboxIsNotListedKeepsItsIdentity) {
  std::vector<Container> all = {Pod("shop", "web", {{"app", "web"}},
                                    "io.kubernetes.docker.type", "podsandbox",
                                    "container")[1]};
  JoinCriPods(all);
  EXPECT_EQ(all[0].pod_name, "web");
  EXPECT_EQ(all[0].name, "app");
  EXPECT_THAT(all[0].labels, Not(Contains(Pair("app", "web"))));
}

// CRI's labels are anyone's to write (`docker run --label`, or an image made
// by `docker commit` of a cri-dockerd container): a container outside a pod
// cgroup is no pod, whatever they say, and its "sandbox" lends no labels.
TEST(CriPodsTest, PodLabelsOutsideAPodCgroupMakeNoPod) {
  std::vector<Container> all =
      Pod("shop", "p1", {{"app", "web"}}, "io.kubernetes.docker.type",
          "podsandbox", "container");
  all[0].cgroup = "/kubepods/burstable/poduid-1/sandbox";
  all[1].cgroup = "/kubepods/burstable/poduid-1/app";
  // The same labels on a container right in Docker's parent, and on a
  // "sandbox" there that would give the pod other labels.
  Container fake = all[1];
  fake.id = "fake";
  fake.name = "fake";
  fake.cgroup = "/audit-wl/fake";
  Container fake_sandbox = Made("fake-sandbox", PodLabels("shop", "p1"));
  fake_sandbox.labels["io.kubernetes.docker.type"] = "podsandbox";
  fake_sandbox.labels["tier"] = "forged";
  fake_sandbox.cgroup = "/audit-wl/fake-sandbox";
  all.push_back(fake);
  all.push_back(fake_sandbox);
  JoinCriPods(all);
  EXPECT_EQ(all[1].pod_name, "p1");
  EXPECT_THAT(all[1].labels, Not(Contains(Pair("tier", "forged"))));
  EXPECT_EQ(all[2].pod_name, "");
  EXPECT_EQ(all[2].pod_namespace, "");
  EXPECT_EQ(all[2].name, "fake");  // not the pod spec's "app"
  EXPECT_EQ(all[2].not_pod, "shop/p1");
  EXPECT_EQ(all[3].pod_name, "");
  // Not running yet (no cgroup): its labels are taken until it runs.
  Container created = fake;
  created.cgroup.clear();
  created.running = false;
  std::vector<Container> one = {created};
  JoinCriPods(one);
  EXPECT_EQ(one[0].pod_name, "p1");
}

TEST(CriPodsTest, PodCgroupsOfBothDrivers) {
  for (const char* yes :
       {"/kubepods/burstable/pod6a1e5c2b-0d3f-4e8a-9b7c-1f2e3d4c5b6a",
        "/kubepods/pod6a1e5c2b", "/kubepods.slice/kubepods-pod6a1e.slice",
        "/kubepods.slice/kubepods-burstable.slice/"
        "kubepods-burstable-pod6a1e_5c2b.slice"}) {
    EXPECT_TRUE(IsPodCgroup(yes)) << yes;
  }
  for (const char* no :
       {"/audit-wl", "/docker", "/", "", "/kubepods", "/kubepods/burstable",
        "/kubepods/pod", "/kubepods.slice",
        "/kubepods.slice/kubepods-burstable.slice",
        "/kubepods.slice/kubepods-pod.slice", "/system.slice/pod1.service"}) {
    EXPECT_FALSE(IsPodCgroup(no)) << no;
  }
}

}  // namespace
}  // namespace egress::workloads
