// A running container as egressd knows it: who it is (for targets, records
// and metrics) and where its processes run (its cgroup).
#ifndef EGRESS_USERSPACE_WORKLOADS_CONTAINER_H_
#define EGRESS_USERSPACE_WORKLOADS_CONTAINER_H_

#include <string>

#include "userspace/policy/label_selector.h"

namespace egress::workloads {

struct Container {
  std::string id;     // full id (64 hex digits for Docker)
  std::string name;   // without Docker's leading "/"
  std::string image;  // as the container was created from: "nginx:1.25"
  policy::Labels labels;
  int pid = 0;         // its first process (0 when not running)
  std::string cgroup;  // of `pid`, relative to the cgroup2 mount
  bool running = false;
  // The pod it belongs to, from the labels CRI writes (containerd's k8s.io
  // namespace); empty for a container no kubelet made.
  std::string pod_namespace, pod_name;
  // "NAMESPACE/NAME" of the pod CRI's labels name when the container is
  // nevertheless no pod's: its cgroup is not in a pod cgroup (JoinCriPods).
  std::string not_pod;
  // Known from Docker's create event only, not inspected yet: whether it
  // has a label `name` or `image` is unknown (ContainerEvent), so `labels`
  // has neither.
  bool from_event = false;

  bool operator==(const Container&) const = default;
};

// The 12-digit form Docker prints.
inline std::string ShortId(const std::string& id) { return id.substr(0, 12); }

// `ref` names the container: its name, its full id or a prefix of the id of
// at least 4 digits (as `docker` accepts).
bool NamesContainer(const Container& c, const std::string& ref);

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_CONTAINER_H_
