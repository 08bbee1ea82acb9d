// egress_workload_info without root: which (target, container) series a
// scrape carries, what they name, the selector's labels as Prometheus label
// names, and the cap on their number.
#include "userspace/daemon/workload_info.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/daemon/metrics.h"

namespace egress {
namespace {

using policy::TargetSource;
using ::testing::HasSubstr;
using ::testing::Not;
using workloads::Container;

constexpr char kWebId[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kApiId[] =
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

Container Running(const std::string& name, const std::string& id,
                  policy::Labels labels = {}) {
  Container c;
  c.id = id;
  c.name = name;
  c.image = name + ":1";
  c.labels = std::move(labels);
  c.pid = 100;
  c.cgroup = "/docker/" + id;
  c.running = true;
  return c;
}

control::TargetInfo Target(const std::string& name, TargetSource source,
                           const std::string& value) {
  control::TargetInfo t;
  t.name = name;
  t.source = source;
  t.source_value = value;
  return t;
}

std::vector<Container> Node() {
  Container web = Running("web", kWebId,
                          {{"app", "web"},
                           {"app.kubernetes.io/name", "shop"},
                           {"secret-ish", "not exported"}});
  web.pod_namespace = "prod";
  web.pod_name = "web-7d9f";
  Container api = Running("api", kApiId, {{"app", "api"}});
  Container stopped = Running("old", std::string(64, 'a'), {{"app", "web"}});
  stopped.running = false;
  return {api, web, stopped};
}

TEST(WorkloadInfoTest, NamesEachSelectedRunningContainer) {
  WorkloadSeries s = WorkloadSeriesOf(
      {Target("web", TargetSource::kContainer, "web"),
       Target("host", TargetSource::kCgroup, "/system.slice/x.service"),
       Target("apps", TargetSource::kSelector, "app=web")},
      Node());
  ASSERT_EQ(s.series.size(), 2u);
  EXPECT_EQ(s.omitted, 0u);
  // Sorted by target: "apps" (the selector) first. The stopped container
  // with app=web is not there, nor is the cgroup target.
  const MetricsSnapshot::Workload& apps = s.series[0];
  EXPECT_EQ(apps.target, "apps");
  EXPECT_EQ(apps.container, "web");
  EXPECT_EQ(apps.container_id, "0123456789ab");
  EXPECT_EQ(apps.image, "web:1");
  EXPECT_EQ(apps.pod_namespace, "prod");
  EXPECT_EQ(apps.pod, "web-7d9f");
  // Only the key the selector names, never the container's other labels.
  EXPECT_EQ(apps.selector_labels,
            (std::map<std::string, std::string>{{"label_app", "web"}}));
  const MetricsSnapshot::Workload& web = s.series[1];
  EXPECT_EQ(web.target, "web");
  EXPECT_EQ(web.container_id, "0123456789ab");
  EXPECT_TRUE(web.selector_labels.empty());
}

TEST(WorkloadInfoTest, GoneContainerHasNoSeries) {
  const std::vector<control::TargetInfo> targets = {
      Target("api", TargetSource::kContainer, "api")};
  std::vector<Container> node = Node();
  EXPECT_EQ(WorkloadSeriesOf(targets, node).series.size(), 1u);
  node.erase(node.begin());  // api is removed
  EXPECT_TRUE(WorkloadSeriesOf(targets, node).series.empty());
}

TEST(WorkloadInfoTest, SelectorKeysBecomeSanitizedLabelNames) {
  WorkloadSeries s =
      WorkloadSeriesOf({Target("shop", TargetSource::kSelector,
                               "app.kubernetes.io/name=shop,app=web")},
                       Node());
  ASSERT_EQ(s.series.size(), 1u);
  EXPECT_EQ(
      s.series[0].selector_labels,
      (std::map<std::string, std::string>{
          {"label_app", "web"}, {"label_app_kubernetes_io_name", "shop"}}));
}

TEST(WorkloadInfoTest, PodSelectorKeysBecomeLabelsToo) {
  WorkloadSeries s = WorkloadSeriesOf(
      {Target("shop", TargetSource::kPodSelector, "prod/app=web")}, Node());
  ASSERT_EQ(s.series.size(), 1u);
  EXPECT_EQ(s.series[0].pod_namespace, "prod");
  EXPECT_EQ(s.series[0].pod, "web-7d9f");
  EXPECT_EQ(s.series[0].selector_labels,
            (std::map<std::string, std::string>{{"label_app", "web"}}));
}

TEST(WorkloadInfoTest, KeysThatSanitizeAlikeStayApart) {
  Container c = Running("c", kWebId, {{"a.b", "1"}, {"a_b", "2"}});
  WorkloadSeries s = WorkloadSeriesOf(
      {Target("t", TargetSource::kSelector, "a.b=1,a_b=2")}, {c});
  ASSERT_EQ(s.series.size(), 1u);
  // Keys in order: "a.b" < "a_b".
  EXPECT_EQ(s.series[0].selector_labels,
            (std::map<std::string, std::string>{{"label_a_b", "1"},
                                                {"label_a_b_conflict1", "2"}}));
}

TEST(WorkloadInfoTest, PrometheusLabelNames) {
  EXPECT_EQ(PrometheusLabelName("app"), "label_app");
  EXPECT_EQ(PrometheusLabelName("com.docker.compose.service"),
            "label_com_docker_compose_service");
  EXPECT_EQ(PrometheusLabelName("example.org/tier:x-y"),
            "label_example_org_tier_x_y");
  EXPECT_EQ(PrometheusLabelName("9lives"), "label_9lives");
  EXPECT_EQ(PrometheusLabelName("caf\xC3\xA9"), "label_caf__");
}

TEST(WorkloadInfoTest, UnparsableSelectorSelectsNothing) {
  EXPECT_TRUE(
      WorkloadSeriesOf({Target("t", TargetSource::kSelector, "app")}, Node())
          .series.empty());
}

TEST(WorkloadInfoTest, CapKeepsTheFirstSeriesAndCountsTheRest) {
  std::vector<Container> node;
  std::vector<control::TargetInfo> targets;
  for (char n = 'a'; n <= 'e'; ++n) {
    node.push_back(
        Running(std::string(1, n), std::string(64, n), {{"x", "1"}}));
  }
  targets.push_back(Target("sel", TargetSource::kSelector, "x=1"));
  WorkloadSeries s = WorkloadSeriesOf(targets, node, 3);
  ASSERT_EQ(s.series.size(), 3u);
  EXPECT_EQ(s.omitted, 2u);
  // The same three every scrape, whatever order the runtime lists them in.
  EXPECT_EQ(s.series[0].container, "a");
  EXPECT_EQ(s.series[2].container, "c");
  std::reverse(node.begin(), node.end());
  WorkloadSeries again = WorkloadSeriesOf(targets, node, 3);
  ASSERT_EQ(again.series.size(), 3u);
  EXPECT_EQ(again.series[0].container, "a");
  EXPECT_EQ(again.series[2].container, "c");
  EXPECT_EQ(WorkloadSeriesOf(targets, node, 5).omitted, 0u);
}

TEST(WorkloadInfoTest, DefaultCapIsTenThousand) {
  std::vector<Container> node;
  for (int i = 0; i < 101; ++i) {
    char id[65];
    snprintf(id, sizeof(id), "%064d", i);
    node.push_back(Running("c" + std::to_string(i), id, {{"x", "1"}}));
  }
  // 101 containers x 100 targets selecting them all.
  std::vector<control::TargetInfo> targets;
  for (int i = 0; i < 100; ++i) {
    targets.push_back(
        Target("t" + std::to_string(i), TargetSource::kSelector, "x=1"));
  }
  WorkloadSeries s = WorkloadSeriesOf(targets, node);
  EXPECT_EQ(s.series.size(), kMaxWorkloadSeries);
  EXPECT_EQ(s.omitted, 101u * 100u - kMaxWorkloadSeries);
}

TEST(WorkloadInfoTest, ExpositionNamesContainerPodAndNode) {
  MetricsSnapshot m;
  m.node = "node-1";
  m.workloads =
      WorkloadSeriesOf({Target("apps", TargetSource::kSelector, "app=web")},
                       Node())
          .series;
  m.workloads_omitted = 7;
  const std::string text = FormatMetrics(m);
  EXPECT_THAT(text, HasSubstr("# TYPE egress_workload_info gauge\n"
                              "egress_workload_info{container=\"web\","
                              "container_id=\"0123456789ab\",image=\"web:1\","
                              "label_app=\"web\",node=\"node-1\","
                              "pod=\"web-7d9f\",pod_namespace=\"prod\","
                              "target=\"apps\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE egress_workload_info_omitted gauge\n"
                              "egress_workload_info_omitted 7\n"));
  EXPECT_THAT(text, HasSubstr("egress_build_info{libbpf_version=\"\","
                              "node=\"node-1\",version=\"\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("not exported")));
}

TEST(WorkloadInfoTest, NoWorkloadsNoInfoSeriesButTheOmittedGauge) {
  const std::string text = FormatMetrics(MetricsSnapshot{});
  EXPECT_THAT(text, Not(HasSubstr("egress_workload_info{")));
  EXPECT_THAT(text, HasSubstr("\negress_workload_info_omitted 0\n"));
}

}  // namespace
}  // namespace egress
