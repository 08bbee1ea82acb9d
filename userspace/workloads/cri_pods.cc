#include "userspace/workloads/cri_pods.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress::workloads {
namespace {

std::string LabelOr(const policy::Labels& labels, const std::string& key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

// The parent of a cgroup path ("" for the root or a name alone).
std::string ParentOf(const std::string& cgroup) {
  const size_t slash = cgroup.rfind('/');
  return slash == std::string::npos || slash == 0 ? ""
                                                  : cgroup.substr(0, slash);
}

// Whether CRI's labels on `c` are to be believed: its cgroup is not known
// yet (a created container; nothing is decided by it), or it lies in a pod
// cgroup. A container in Docker's parent, say, is not a pod: taken as one,
// its "pod cgroup" would be the parent that holds every container.
bool InPodCgroup(const Container& c) {
  return c.cgroup.empty() || IsPodCgroup(ParentOf(c.cgroup));
}

}  // namespace

bool IsPodCgroup(const std::string& cgroup) {
  const std::string name = cgroup.substr(cgroup.rfind('/') + 1);
  if (absl::StartsWith(name, "kubepods-") && absl::EndsWith(name, ".slice")) {
    // kubepods-pod<uid>.slice, kubepods-<qos>-pod<uid>.slice; not the QoS
    // class's own kubepods-<qos>.slice.
    const std::string stem = name.substr(0, name.size() - 6);
    const size_t pod = stem.rfind("-pod");
    return pod != std::string::npos && pod + 4 < stem.size();
  }
  return absl::StartsWith(name, "pod") && name.size() > 3 &&
         name.find('.') == std::string::npos;
}

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
    if (!IsCriSandbox(c.labels) || !InPodCgroup(c)) continue;
    const CriPod pod = CriPodOf(c.labels);
    if (!pod.name.empty()) pod_labels[{pod.ns, pod.name}] = c.labels;
  }
  for (Container& c : all) {
    const CriPod pod = CriPodOf(c.labels);
    if (pod.name.empty()) continue;
    if (!InPodCgroup(c)) {
      c.not_pod = absl::StrCat(pod.ns, "/", pod.name);
      continue;
    }
    c.pod_namespace = pod.ns;
    c.pod_name = pod.name;
    if (!pod.container.empty()) c.name = pod.container;
    auto s = pod_labels.find({pod.ns, pod.name});
    if (s != pod_labels.end())
      c.labels.insert(s->second.begin(), s->second.end());
  }
}

}  // namespace egress::workloads
