#include "userspace/workloads/cri_pods.h"

#include <map>
#include <utility>

namespace egress::workloads {
namespace {

std::string LabelOr(const policy::Labels& labels, const std::string& key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

}  // namespace

CriPod CriPodOf(const policy::Labels& labels) {
  return {LabelOr(labels, "io.kubernetes.pod.namespace"),
          LabelOr(labels, "io.kubernetes.pod.name"),
          LabelOr(labels, "io.kubernetes.container.name")};
}

bool IsCriSandbox(const policy::Labels& labels) {
  return LabelOr(labels, "io.cri-containerd.kind") == "sandbox" ||
         LabelOr(labels, "io.kubernetes.docker.type") == "podsandbox";
}

void JoinCriPods(std::vector<Container>& all) {
  // A pod's labels are its sandbox's (copied: `all` changes below).
  std::map<std::pair<std::string, std::string>, policy::Labels> pod_labels;
  for (const Container& c : all) {
    if (!IsCriSandbox(c.labels)) continue;
    const CriPod pod = CriPodOf(c.labels);
    if (!pod.name.empty()) pod_labels[{pod.ns, pod.name}] = c.labels;
  }
  for (Container& c : all) {
    const CriPod pod = CriPodOf(c.labels);
    if (pod.name.empty()) continue;
    c.pod_namespace = pod.ns;
    c.pod_name = pod.name;
    if (!pod.container.empty()) c.name = pod.container;
    auto s = pod_labels.find({pod.ns, pod.name});
    if (s != pod_labels.end())
      c.labels.insert(s->second.begin(), s->second.end());
  }
}

}  // namespace egress::workloads
