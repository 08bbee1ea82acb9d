// Pod targets without root: how a pod and a pod selector are written
// (NAMESPACE/NAME, NAMESPACE/k=v), which pods they select and the cgroup a
// pod is decided by, records and filters that name a pod, and the CLI and
// policy file forms (NetworkPolicy's namespace + podSelector).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/workload_test_util.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_json.h"
#include "userspace/events/event_text.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/workloads/cri_pods.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

using policy::Labels;
using policy::TargetSource;
using ::testing::HasSubstr;
using workloads::Container;

TEST(PodRefTest, ParsesPodsAndSelectors) {
  auto pod = policy::ParsePodRef("shop/web-7d9c4-x2x9k");
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(*pod, (policy::PodRef{"shop", "web-7d9c4-x2x9k"}));
  EXPECT_EQ(policy::PodRefText(*pod), "shop/web-7d9c4-x2x9k");
  EXPECT_STATUS(policy::ParsePodRef("web"), absl::StatusCode::kInvalidArgument,
                "expected NAMESPACE/NAME");
  EXPECT_STATUS(policy::ParsePodRef("Shop/web"),
                absl::StatusCode::kInvalidArgument, "not a namespace name");
  EXPECT_STATUS(policy::ParsePodRef("shop/-web"),
                absl::StatusCode::kInvalidArgument, "not a pod name");

  auto sel = policy::ParsePodSelector("shop/tier=front,app=web");
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(sel->ns, "shop");
  EXPECT_EQ(sel->labels, (Labels{{"app", "web"}, {"tier", "front"}}));
  EXPECT_EQ(policy::PodSelectorText(*sel), "shop/app=web,tier=front");
  auto all = policy::ParsePodSelector("shop/");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->labels.empty());
  EXPECT_EQ(policy::PodSelectorText(*all), "shop/");
  EXPECT_STATUS(policy::ParsePodSelector("app=web"),
                absl::StatusCode::kInvalidArgument, "expected NAMESPACE/");
  EXPECT_STATUS(policy::ParsePodSelector("shop/app"),
                absl::StatusCode::kInvalidArgument, "not key=value");

  EXPECT_TRUE(policy::PodSelectorMatches(*sel, "shop",
                                         {{"app", "web"}, {"tier", "front"}}));
  EXPECT_FALSE(policy::PodSelectorMatches(*sel, "shop", {{"app", "web"}}));
  EXPECT_FALSE(policy::PodSelectorMatches(*sel, "kube-system",
                                          {{"app", "web"}, {"tier", "front"}}));
  // Every pod of the namespace, none of another, no container outside pods.
  EXPECT_TRUE(policy::PodSelectorMatches(*all, "shop", {}));
  EXPECT_FALSE(policy::PodSelectorMatches(*all, "other", {}));
  EXPECT_FALSE(policy::PodSelectorMatches(*all, "", {}));
}

Container PodContainer(const std::string& id, const std::string& ns,
                       const std::string& pod, const std::string& cgroup,
                       Labels labels = {}) {
  Container c;
  c.id = id;
  c.name = id;
  c.cgroup = cgroup;
  c.labels = std::move(labels);
  c.pod_namespace = ns;
  c.pod_name = pod;
  c.running = true;
  c.pid = 1;
  return c;
}

TEST(PodSelectionTest, PodsByNameAndLabelsDecidedByThePodCgroup) {
  const std::vector<Container> running = {
      // Pod web-1: its sandbox and one container, both in pod cgroup podp1.
      PodContainer("s1", "shop", "web-1", "/kubepods/burstable/podp1/s1",
                   {{"app", "web"}}),
      PodContainer("c1", "shop", "web-1", "/kubepods/burstable/podp1/c1",
                   {{"app", "web"}}),
      PodContainer("c2", "shop", "web-2", "/kubepods/podp2/c2",
                   {{"app", "web"}}),
      PodContainer("c3", "shop", "db-1", "/kubepods/podp3/c3", {{"app", "db"}}),
      PodContainer("c4", "other", "web-9", "/kubepods/podp4/c4",
                   {{"app", "web"}}),
  };
  auto cgroups = [&](TargetSource s, const std::string& v) {
    return workloads::SelectWorkloadCgroups(s, v, running);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(cgroups(TargetSource::kPodSelector, "shop/app=web"),
            (V{"/kubepods/burstable/podp1", "/kubepods/podp2"}));
  EXPECT_EQ(cgroups(TargetSource::kPodSelector, "shop/app=db"),
            V{"/kubepods/podp3"});
  EXPECT_EQ(
      cgroups(TargetSource::kPodSelector, "shop/"),
      (V{"/kubepods/burstable/podp1", "/kubepods/podp2", "/kubepods/podp3"}));
  EXPECT_EQ(cgroups(TargetSource::kPodSelector, "other/app=web"),
            V{"/kubepods/podp4"});
  EXPECT_EQ(cgroups(TargetSource::kPodSelector, "app=web"), V{});  // no ns
  EXPECT_EQ(cgroups(TargetSource::kPod, "shop/web-1"),
            V{"/kubepods/burstable/podp1"});
  EXPECT_EQ(cgroups(TargetSource::kPod, "shop/web-9"), V{});
  // A pod's container selects by the pod's cgroup; a lone container by its
  // own.
  EXPECT_EQ(workloads::WorkloadCgroup(running[1]), "/kubepods/burstable/podp1");
  Container lone = running[1];
  lone.pod_namespace.clear();
  lone.pod_name.clear();
  EXPECT_EQ(workloads::WorkloadCgroup(lone), "/kubepods/burstable/podp1/c1");
}

// A Docker container carrying a pod's labels right under Docker's parent:
// a pod target must never take that parent (every container's) as the pod.
TEST(PodSelectionTest, AContainerWithPodLabelsInDockersParentIsNoPod) {
  Container fake;
  fake.id = "f00d";
  fake.name = "fake";
  fake.running = true;
  fake.pid = 1;
  fake.cgroup = "/audit-wl/f00d";
  fake.labels = {{"io.kubernetes.pod.namespace", "shop"},
                 {"io.kubernetes.pod.name", "p1"}};
  Container other = fake;
  other.id = "beef";
  other.name = "other";
  other.cgroup = "/audit-wl/beef";
  other.labels.clear();
  std::vector<Container> running = {fake, other};
  workloads::JoinCriPods(running);
  using V = std::vector<std::string>;
  EXPECT_EQ(
      workloads::SelectWorkloadCgroups(TargetSource::kPod, "shop/p1", running),
      V{});
  EXPECT_EQ(workloads::SelectWorkloadCgroups(TargetSource::kPodSelector,
                                             "shop/", running),
            V{});
  // Made a pod by hand: still its own cgroup, never Docker's parent.
  running[0].pod_namespace = "shop";
  running[0].pod_name = "p1";
  EXPECT_EQ(workloads::WorkloadCgroup(running[0]), "/audit-wl/f00d");
}

TEST(PodSelectionTest, NoTargetIsAttachedAtOrAboveAWorkloadParent) {
  const std::set<std::string> parents = {"/audit-wl", "/kubepods/burstable"};
  for (const char* holds :
       {"/", "", "/audit-wl", "/kubepods", "/kubepods/burstable"}) {
    EXPECT_TRUE(workloads::HoldsWorkloadParent(holds, parents)) << holds;
  }
  for (const char* free : {"/audit-wl/f00d", "/audit-wlx", "/kubepods/podp1",
                           "/kubepods/burstable/podp2"}) {
    EXPECT_FALSE(workloads::HoldsWorkloadParent(free, parents)) << free;
  }
  // A container whose own cgroup is Docker's parent's parent (a runtime
  // misreporting it): left out, and said so.
  Container web = PodContainer("w", "", "", "/audit-wl");
  Container db = PodContainer("d", "", "", "/audit-wl/d");
  std::vector<std::string> refused;
  EXPECT_EQ(workloads::SelectWorkloadCgroups(TargetSource::kContainer, "w",
                                             {web, db}, {}, &refused),
            std::vector<std::string>{});
  EXPECT_EQ(refused, std::vector<std::string>{"/audit-wl"});
  EXPECT_EQ(workloads::SelectWorkloadCgroups(TargetSource::kContainer, "d",
                                             {web, db}, {"/audit-wl/x"}),
            std::vector<std::string>{"/audit-wl/d"});
}

// A selected workload whose cgroup is not right below a watched parent has
// no watch instance deciding its first instructions: status names it.
TEST(PodSelectionTest, SelectedWorkloadsOutsideTheWatchedParents) {
  Container inside = PodContainer("in", "", "", "/audit-wl/in");
  Container outside = PodContainer("out", "", "", "/elsewhere/out");
  Container pod = PodContainer("p", "shop", "p1", "/kubepods/podu1/p");
  inside.labels = outside.labels = {{"app", "web"}};
  const std::vector<Container> running = {inside, outside, pod};
  const std::set<std::string> parents = {"/audit-wl", "/kubepods"};
  std::vector<std::string> names;
  for (const Container& c : workloads::SelectedOutsideParents(
           TargetSource::kSelector, "app=web", running, parents)) {
    names.push_back(c.name);
  }
  EXPECT_EQ(names, std::vector<std::string>{"out"});
  // A pod is decided in its pod cgroup's parent.
  EXPECT_TRUE(workloads::SelectedOutsideParents(TargetSource::kPod, "shop/p1",
                                                running, parents)
                  .empty());
  EXPECT_EQ(workloads::SelectedOutsideParents(TargetSource::kPod, "shop/p1",
                                              running, {"/audit-wl"})
                .size(),
            1u);
}

TEST(PodRecordTest, JsonTextAndFilter) {
  EventRecord r = testing::RefusedConnectRecord("shop-web");
  r.ctx.container = {"web", "8f3a5c2e9d1b", "shop/web:3", "shop", "web-1"};
  nlohmann::json j = EventToJson(r.raw, r.ctx);
  EXPECT_EQ(j["pod"],
            (nlohmann::json{{"namespace", "shop"}, {"name", "web-1"}}));
  EXPECT_EQ(j["container"]["name"], "web");
  // The labels the target selects by go with the pod (a Docker container's
  // with the container).
  r.ctx.container.labels = {{"app", "web"}};
  nlohmann::json with_labels = EventToJson(r.raw, r.ctx);
  EXPECT_EQ(with_labels["pod"]["labels"], (nlohmann::json{{"app", "web"}}));
  EXPECT_FALSE(with_labels["container"].contains("labels"));
  r.ctx.container.labels.clear();
  EventContext docker_labels;
  docker_labels.container = {"web", "8f3a5c2e9d1b",     "nginx", "",
                             "",    {{"tier", "front"}}};
  EXPECT_EQ(EventToJson(r.raw, docker_labels)["container"]["labels"],
            (nlohmann::json{{"tier", "front"}}));
  EXPECT_THAT(RenderText(r), HasSubstr("pod shop/web-1 container web"));
  EventContext docker;
  docker.container = {"web", "8f3a5c2e9d1b", "nginx", "", ""};
  EXPECT_FALSE(EventToJson(r.raw, docker).contains("pod"));

  EventFilter f;
  f.pod = "shop/web-1";
  EXPECT_TRUE(f.Matches(r));
  f.pod = "shop/";
  EXPECT_TRUE(f.Matches(r));
  f.pod = "sho/";
  EXPECT_FALSE(f.Matches(r));
  f.pod = "shop/web-2";
  EXPECT_FALSE(f.Matches(r));
  r.ctx.container = docker.container;
  f.pod = "shop/";
  EXPECT_FALSE(f.Matches(r));
}

TEST(PodPolicyTest, NamespaceWithPodSelectorOrPod) {
  auto target = [](const std::string& text) {
    auto p = policy::ParsePolicy(testing::PolicyWithTarget(text), "web.yaml");
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? p->target : policy::PolicyTarget{};
  };
  EXPECT_EQ(target("    namespace: shop\n    podSelector:\n      matchLabels:"
                   "\n        tier: front\n        app: web\n"),
            (policy::PolicyTarget{TargetSource::kPodSelector,
                                  "shop/app=web,tier=front"}));
  EXPECT_EQ(target("    namespace: shop\n    podSelector: {}\n"),
            (policy::PolicyTarget{TargetSource::kPodSelector, "shop/"}));
  EXPECT_EQ(target("    namespace: shop\n    pod: web-7d9c4-x2x9k\n"),
            (policy::PolicyTarget{TargetSource::kPod, "shop/web-7d9c4-x2x9k"}));
  // Written and read back the same.
  for (const policy::PolicyTarget& t :
       {policy::PolicyTarget{TargetSource::kPodSelector, "shop/app=web"},
        policy::PolicyTarget{TargetSource::kPodSelector, "shop/"},
        policy::PolicyTarget{TargetSource::kPod, "shop/web-1"}}) {
    policy::PolicyDocument doc;
    doc.name = "web";
    doc.target = t;
    const std::string text = policy::WritePolicy(doc);
    auto again = policy::ParsePolicy(text, "x.yaml");
    ASSERT_TRUE(again.ok()) << again.status() << text;
    EXPECT_EQ(again->target, t) << text;
  }
}

TEST(PodPolicyTest, ErrorsNameFileLineAndField) {
  auto error = testing::TargetError;
  EXPECT_EQ(error("    podSelector: {matchLabels: {app: web}}\n"),
            "web.yaml:7:5: spec.target.podSelector: needs namespace: a pod "
            "target names its namespace (a selector never spans namespaces)");
  EXPECT_EQ(error("    namespace: shop\n"),
            "web.yaml:7:5: spec.target.namespace: needs podSelector "
            "(podSelector: {} for every pod of the namespace) or pod: NAME");
  EXPECT_THAT(error("    namespace: Shop\n    podSelector: {}\n"),
              HasSubstr("web.yaml:7:16: spec.target.namespace: 'Shop' is not "
                        "a namespace name"));
  EXPECT_THAT(
      error("    namespace: shop\n    podSelector:\n      matchExpressions: "
            "[]\n"),
      HasSubstr("spec.target.podSelector.matchExpressions: not supported; "
                "select with matchLabels"));
  EXPECT_THAT(error("    namespace: shop\n    pod: a\n    podSelector: {}\n"),
              HasSubstr("a policy has exactly one target"));
  EXPECT_THAT(error("    namespace: shop\n    container: web\n"),
              HasSubstr("a policy has exactly one target"));
}

TEST(PodCliTest, TargetAddAndEvents) {
  auto spec_of = [](std::vector<std::string> args) {
    auto parsed = cli::ParseCommandLine(args);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok()
               ? std::get<control::TargetAddRequest>(*parsed->request).spec
               : control::TargetSpec{};
  };
  control::TargetSpec s = spec_of({"target", "add", "web", "--namespace",
                                   "shop", "--pod-selector", "tier=a,app=web"});
  EXPECT_EQ(s.source, TargetSource::kPodSelector);
  EXPECT_EQ(s.source_value, "shop/app=web,tier=a");
  s = spec_of(
      {"target", "add", "all", "--namespace", "shop", "--pod-selector", ""});
  EXPECT_EQ(s.source_value, "shop/");
  s = spec_of({"target", "add", "one", "--pod", "shop/web-1"});
  EXPECT_EQ(s.source, TargetSource::kPod);
  EXPECT_EQ(s.source_value, "shop/web-1");
  EXPECT_STATUS(cli::ParseCommandLine(
                    {"target", "add", "web", "--pod-selector", "app=web"}),
                absl::StatusCode::kInvalidArgument,
                "--pod-selector needs --namespace");
  EXPECT_STATUS(
      cli::ParseCommandLine({"target", "add", "web", "--pod", "web-1"}),
      absl::StatusCode::kInvalidArgument, "--pod: pod 'web-1'");
  EXPECT_STATUS(cli::ParseCommandLine({"target", "add", "web", "--namespace",
                                       "shop", "--container", "web"}),
                absl::StatusCode::kInvalidArgument,
                "--namespace goes with --pod-selector");
  auto events = cli::ParseCommandLine({"events", "--pod", "shop/web-1"});
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(std::get<control::EventsRequest>(*events->request).pod,
            "shop/web-1");
  EXPECT_TRUE(cli::ParseCommandLine({"events", "--pod", "shop/"}).ok());
}

}  // namespace
}  // namespace egress
