// Kubernetes pods as the kubelet makes them through CRI (its Container
// Runtime Interface), read back from the labels every CRI implementation
// writes on the containers it makes: io.kubernetes.pod.namespace and
// io.kubernetes.pod.name on each, io.kubernetes.container.name on an app
// container, and the pod's own labels on its sandbox only. The sandbox is
// io.cri-containerd.kind=sandbox under containerd's CRI plugin and
// io.kubernetes.docker.type=podsandbox under cri-dockerd (Kubernetes on
// Docker Engine). Pure logic: the watchers of each runtime call it.
#ifndef EGRESS_USERSPACE_WORKLOADS_CRI_PODS_H_
#define EGRESS_USERSPACE_WORKLOADS_CRI_PODS_H_

#include <string>
#include <vector>

#include "userspace/policy/label_selector.h"
#include "userspace/workloads/container.h"

namespace egress::workloads {

// The pod a container belongs to; empty fields for a container CRI did not
// make (and `container` empty for a sandbox).
struct CriPod {
  std::string ns;         // io.kubernetes.pod.namespace
  std::string name;       // io.kubernetes.pod.name
  std::string container;  // io.kubernetes.container.name
};
CriPod CriPodOf(const policy::Labels& labels);

// True for a pod's sandbox (its pause container), under either runtime.
bool IsCriSandbox(const policy::Labels& labels);

// Whether `cgroup` is named as the kubelet names a pod's cgroup: pod<uid>
// (the cgroupfs driver) or kubepods[-<qos>]-pod<uid>.slice (the systemd
// driver). CRI's labels are only labels: anyone can put them on a container
// (`docker run --label`, an image made by `docker commit` of a pod's
// container); a pod is a container in a pod cgroup too.
bool IsPodCgroup(const std::string& cgroup);

// Gives every container of `all` that CRI made its pod identity
// (pod_namespace, pod_name), its name in the pod spec (the sandbox keeps
// its own), and its pod's labels from the pod's sandbox in `all`; a label
// of the container's own stays as it is. A container with CRI's labels
// whose cgroup is known and is not in a pod cgroup (IsPodCgroup of its
// parent) is no pod: it keeps its own identity and gets `not_pod` ("NS/NAME"
// its labels claim), and its labels are no sandbox's. Other containers are
// untouched.
void JoinCriPods(std::vector<Container>& all);

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_CRI_PODS_H_
