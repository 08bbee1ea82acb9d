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

}  // namespace
}  // namespace egress::workloads
