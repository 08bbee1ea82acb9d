// Targets that name Kubernetes pods (--pod, --namespace + --pod-selector),
// against a real containerd (tests/testing/containerd.h, one per suite):
// pods laid out as the kubelet's CRI makes them (a sandbox and an app
// container per pod, CRI's labels, the pod's labels on its sandbox, pod
// cgroups below a kubepods tree with a burstable class), host network,
// connects to loopback only. A selector picks exactly the matching pods,
// two pods keep their own policies, a new matching pod is refused from its
// first instruction, and records name the pod.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/containerd_suite.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/containerd.h"
#include "tests/testing/listeners.h"
#include "tests/testing/status_matchers.h"

namespace egress::testing {
namespace {

struct Pod {
  std::string ns, name;
  std::string cgroup;        // the pod's, relative to the cgroup2 mount
  std::string sandbox, app;  // container ids
};

class PodTargetTest : public ContainerdSuite {
 protected:
  void SetUp() override {
    ExpectContainerd();
    if (HasFatalFailure()) return;
    // The kubelet's tree: kubepods with a burstable class (guaranteed pods
    // right in kubepods).
    ASSERT_OK_AND_ASSIGN(kubepods_, TestCgroup::Create("kubepods"));
    ASSERT_OK(kubepods_->CreateChild("burstable").status());
    extra_daemon_args_ = {"--containerd_socket", containerd_->socket(),
                          "--docker_socket="};
    EgressdTest::SetUp();
    CreateListeners();
  }
  void TearDown() override {
    RemoveStarted();
    if (kubepods_) {
      RemoveV1Trees(kubepods_->relative_path());
      EXPECT_OK(kubepods_->Remove());
    }
    EgressdTest::TearDown();
  }

  // A pod as the kubelet makes it through CRI: its sandbox (labelled with
  // the pod's labels) and one app container named "app" running `command`
  // (default: sleep), in pod cgroup kubepods[/burstable]/pod<uid>.
  Pod RunPod(const std::string& ns, const std::string& name,
             const std::map<std::string, std::string>& labels,
             bool burstable = true, std::vector<std::string> command = {}) {
    Pod pod{ns, name, "", "", ""};
    const std::string uid = absl::StrCat(name, "-", ++pods_started_);
    pod.cgroup = absl::StrCat(kubepods_->relative_path(),
                              burstable ? "/burstable" : "", "/pod", uid);
    std::map<std::string, std::string> cri = {
        {"io.kubernetes.pod.namespace", ns},
        {"io.kubernetes.pod.name", name},
        {"io.kubernetes.pod.uid", uid}};
    std::map<std::string, std::string> sandbox_labels = cri;
    sandbox_labels.insert(labels.begin(), labels.end());
    sandbox_labels["io.cri-containerd.kind"] = "sandbox";
    pod.sandbox = absl::StrCat(uid, "-sandbox");
    auto s = containerd_->Run(kNamespace, pod.sandbox, kImage, sandbox_labels,
                              {"/bin/busybox", "sleep", "600"},
                              pod.cgroup + "/" + pod.sandbox);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) started_.push_back(pod.sandbox);
    std::map<std::string, std::string> app_labels = cri;
    app_labels["io.cri-containerd.kind"] = "container";
    app_labels["io.kubernetes.container.name"] = "app";
    pod.app = absl::StrCat(uid, "-app");
    if (command.empty()) command = {"/bin/busybox", "sleep", "600"};
    auto a = containerd_->Run(kNamespace, pod.app, kImage, app_labels, command,
                              pod.cgroup + "/" + pod.app);
    EXPECT_TRUE(a.ok()) << a.status();
    if (a.ok()) started_.push_back(pod.app);
    return pod;
  }

  // The cgroup paths `status -o json` shows for `target`.
  std::vector<std::string> CgroupsOf(const std::string& target) {
    std::vector<std::string> out;
    const nlohmann::json status = CtlJson({"status"});
    for (const auto& t : status["targets"]) {
      if (t["name"] != target || !t.contains("cgroups")) continue;
      for (const auto& c : t["cgroups"]) out.push_back(c["path"]);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<TestCgroup> kubepods_;
  int pods_started_ = 0;
};

TEST_F(PodTargetTest, SelectorPicksExactlyTheMatchingPods) {
  Pod web1 = RunPod("shop", "web-1", {{"app", "web"}});
  Pod web2 = RunPod("shop", "web-2", {{"app", "web"}}, /*burstable=*/false);
  Pod db = RunPod("shop", "db-1", {{"app", "db"}});
  Pod other = RunPod("other", "web-9", {{"app", "web"}});
  CtlOk({"target", "add", "shop-web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  Allow("shop-web", allowed_->port());
  for (const Pod* p : {&web1, &web2}) {
    EXPECT_TRUE(WaitRefused(p->app, denied_->port())) << p->name;
    EXPECT_FALSE(Refused(p->app, allowed_->port())) << p->name;
    // The pod's sandbox shares the pod's policy.
    EXPECT_TRUE(Refused(p->sandbox, denied_->port())) << p->name;
  }
  // Another app, another namespace: untouched.
  for (const Pod* p : {&db, &other}) {
    EXPECT_FALSE(Refused(p->app, denied_->port())) << p->name;
    EXPECT_FALSE(Refused(p->app, allowed_->port())) << p->name;
  }
  std::vector<std::string> want = {web1.cgroup, web2.cgroup};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(CgroupsOf("shop-web"), want) << CtlJson({"status"}).dump(1);
}

TEST_F(PodTargetTest, TwoPodsKeepTheirOwnPolicies) {
  Pod web = RunPod("shop", "web-1", {{"app", "web"}});
  Pod db = RunPod("shop", "db-1", {{"app", "db"}});
  CtlOk({"target", "add", "web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  CtlOk({"target", "add", "db", "--pod", "shop/db-1"});
  Allow("web", allowed_->port());
  Allow("db", denied_->port());
  EXPECT_TRUE(WaitRefused(web.app, denied_->port()));
  EXPECT_FALSE(Refused(web.app, allowed_->port()));
  EXPECT_TRUE(WaitRefused(db.app, allowed_->port()));
  EXPECT_FALSE(Refused(db.app, denied_->port()));
  EXPECT_EQ(CgroupsOf("db"), std::vector<std::string>{db.cgroup});
}

TEST_F(PodTargetTest, NewMatchingPodIsEnforcedAtOnce) {
  Pod web = RunPod("shop", "web-1", {{"app", "web"}});
  CtlOk({"target", "add", "shop-web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  Allow("shop-web", allowed_->port());
  ASSERT_TRUE(WaitRefused(web.app, denied_->port()));
  // New pods whose app connects to a denied address as its very first act,
  // in the burstable class and right in kubepods (guaranteed); each to a
  // listener of its own (records are rate-limited per destination).
  constexpr int kPods = 6;
  std::vector<Pod> fresh;
  std::vector<std::unique_ptr<TcpListener>> first;
  for (int i = 0; i < kPods; ++i) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TcpListener> l,
                         TcpListener::Create("127.0.0.1"));
    std::vector<std::string> command = {
        "/bin/busybox", "sh", "-c",
        absl::StrCat(ConnectScript(l->port()),
                     "; exec /bin/busybox sleep 600")};
    fresh.push_back(RunPod("shop", absl::StrCat("new-", i), {{"app", "web"}},
                           i % 2 == 0, command));
    first.push_back(std::move(l));
  }
  // Each was refused: nothing reached the listeners, and egressd recorded a
  // refusal from inside each new pod's cgroup (by the target's rules, or by
  // the default when it came before egressd classified the pod).
  size_t refused = 0;
  std::vector<nlohmann::json> records;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    records = Records({"--verdict", "deny"}, 1);
    refused = 0;
    for (size_t i = 0; i < fresh.size(); ++i) {
      for (const auto& r : records) {
        if (r.contains("l4") &&
            r["l4"]["destination_port"] == first[i]->port() &&
            absl::StartsWith(r["cgroup"]["path"].get<std::string>(),
                             fresh[i].cgroup + "/")) {
          ++refused;
          break;
        }
      }
    }
    if (refused == fresh.size()) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  std::string dump;
  for (const auto& r : records) dump += r.dump() + "\n";
  EXPECT_EQ(refused, fresh.size()) << dump;
  for (const auto& l : first) EXPECT_EQ(l->accepted(), 0);
  // Classified as the target's: its rules apply, not only the default.
  for (const Pod& p : fresh) {
    EXPECT_TRUE(WaitRefused(p.app, allowed_->port(), /*want=*/false)) << p.name;
    EXPECT_TRUE(Refused(p.app, denied_->port())) << p.name;
  }
}

TEST_F(PodTargetTest, RecordsCarryPodIdentity) {
  Pod web1 = RunPod("shop", "web-1", {{"app", "web"}});
  Pod web2 = RunPod("shop", "web-2", {{"app", "web"}});
  CtlOk({"target", "add", "shop-web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  // Once containerd has listed both app containers to egressd (its
  // metrics name them), their records name them too.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string metrics;
  do {
    metrics = ScrapeMetrics();
    if (absl::StrContains(metrics, absl::StrCat("\"", web1.app, "\"")) &&
        absl::StrContains(metrics, absl::StrCat("\"", web2.app, "\""))) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_TRUE(WaitRefused(web1.app, denied_->port())) << metrics;
  ASSERT_TRUE(WaitRefused(web2.app, denied_->port()));
  std::vector<nlohmann::json> one = Records({"--pod", "shop/web-1"}, 1);
  ASSERT_FALSE(one.empty());
  for (const auto& r : one) {
    // Of the pod's labels, those the target selects by.
    EXPECT_EQ(r["pod"], (nlohmann::json{{"namespace", "shop"},
                                        {"name", "web-1"},
                                        {"labels", {{"app", "web"}}}}))
        << r;
    EXPECT_EQ(r["container"]["name"], "app") << r;
    EXPECT_EQ(r["container"]["image"], kImage) << r;
    EXPECT_EQ(r["target"], "shop-web") << r;
  }
  bool saw_web2 = false;
  for (const auto& r : Records({"--pod", "shop/"}, one.size() + 1)) {
    saw_web2 = saw_web2 || r["pod"]["name"] == "web-2";
  }
  EXPECT_TRUE(saw_web2);
  EXPECT_TRUE(Records({"--pod", "other/"}, 0).empty());
}

TEST_F(PodTargetTest, VerifyProbesFromInsideThePod) {
  Pod web = RunPod("shop", "web-1", {{"app", "web"}});
  CtlOk({"target", "add", "shop-web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  Allow("shop-web", allowed_->port());
  ASSERT_TRUE(WaitRefused(web.app, denied_->port()));
  // The probes run in the pod's network namespace, in a leaf of their own
  // below the pod's cgroup (which has no process of its own), and go.
  CommandResult r = Ctl({"verify", "--target", "shop-web"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "blocked (EPERM)")) << r.output;
  // No leaf of the probes is left, at any depth below the pod's cgroup
  // (which must be there to look at).
  std::error_code ec;
  const std::string pod_cgroup =
      kubepods_->path() + web.cgroup.substr(kubepods_->relative_path().size());
  int seen = 0;
  for (const auto& d :
       std::filesystem::recursive_directory_iterator(pod_cgroup, ec)) {
    ++seen;
    EXPECT_FALSE(absl::StrContains(d.path().string(), "egress-verify"))
        << d.path();
  }
  ASSERT_FALSE(ec) << pod_cgroup << ": " << ec.message();
  EXPECT_GT(seen, 0) << pod_cgroup << " is empty: not the pod's cgroup";
}

TEST_F(PodTargetTest, NewPodsFirstAllowedConnectPasses) {
  Pod web = RunPod("shop", "web-1", {{"app", "web"}});
  CtlOk({"target", "add", "shop-web", "--namespace", "shop", "--pod-selector",
         "app=web"});
  Allow("shop-web", allowed_->port());
  ASSERT_TRUE(WaitRefused(web.app, denied_->port()));
  // New pods whose app connects to an allowed address as its very first
  // act, once: egressd learns of each sandbox from containerd's events and
  // classifies the pod before its app starts (the kubelet starts the app
  // containers after the sandbox), so no first connect meets the default.
  constexpr int kPods = 6;
  const int before = allowed_->accepted();
  std::string outputs;
  for (int i = 0; i < kPods; ++i) {
    Pod p =
        RunPod("shop", absl::StrCat("fresh-", i), {{"app", "web"}}, i % 2 == 0,
               {"/bin/busybox", "sh", "-c",
                absl::StrCat(ConnectScript(allowed_->port()),
                             "; exec /bin/busybox sleep 600")});
    absl::StrAppend(&outputs, p.name, " ");
  }
  EXPECT_TRUE(allowed_->WaitForAccepted(before + kPods, absl::Seconds(10)))
      << allowed_->accepted() - before << " of " << kPods << " accepted; "
      << DaemonLog();
}

}  // namespace
}  // namespace egress::testing
