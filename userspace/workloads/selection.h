// Which running containers a workload target selects, and which container a
// cgroup belongs to. Pure logic over the runtime's view (DockerWatcher).
#ifndef EGRESS_USERSPACE_WORKLOADS_SELECTION_H_
#define EGRESS_USERSPACE_WORKLOADS_SELECTION_H_

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "userspace/policy/vocabulary.h"
#include "userspace/workloads/container.h"

namespace egress::workloads {

// The running containers that `value` selects: kContainer names one (name,
// id or id prefix, NamesContainer; every one an ambiguous prefix names);
// kSelector is a label selector text (policy::ParseLabelSelector); kPod is
// "NAMESPACE/NAME" and kPodSelector "NAMESPACE/k=v,..." (policy/pod_ref.h):
// every container of the selected pods. An unparsable value selects nothing.
// Sorted by cgroup, each cgroup once, containers without a cgroup left out.
std::vector<Container> SelectContainers(policy::TargetSource source,
                                        const std::string& value,
                                        const std::vector<Container>& running);

// The containers of `containers` that a kContainer target's `value` names,
// when it names more than one (an id prefix that several ids start with, or
// one container's name and an id prefix of another's), sorted by name; {}
// when it names one or none, and for any other source. SelectContainers
// selects each of them.
std::vector<Container> AmbiguousContainers(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& containers);

// The label keys a target's selector names, in key order: kSelector's and
// kPodSelector's ({} for any other target, or a value that cannot be read).
// Only these labels are shown in records and metrics: all of them would be
// noise and, in metrics, a series per label change.
std::vector<std::string> SelectorKeys(policy::TargetSource source,
                                      const std::string& value);

// Whether one target selects a container by who it is, running or not:
// `value` (as for SelectContainers) read once, for many containers. A value
// that cannot be read selects nothing.
using ContainerMatcher = std::function<bool(const Container&)>;
ContainerMatcher MatcherOf(policy::TargetSource source,
                           const std::string& value);
// MatcherOf(source, value)(c): a container created and not started yet is
// selected by what it will be once it runs.
bool SelectsContainer(policy::TargetSource source, const std::string& value,
                      const Container& c);

// The cgroup a workload's policy is attached to and classified by: a pod
// container's pod (the parent of its own cgroup: kubepods/.../pod<uid>,
// or kubepods-...-pod<uid>.slice), so every container of a pod, its sandbox
// included, shares one decision; any other container's own cgroup, and so
// is a pod container's whose parent is no pod cgroup (IsPodCgroup).
std::string WorkloadCgroup(const Container& c);

// The workload parents `running` shows: the parent of each cgroup a
// workload is decided by (WorkloadCgroup: Docker's container parent, a pod's
// QoS class), the root left out.
std::set<std::string> WorkloadParentsOf(const std::vector<Container>& running);

// Whether `cgroup` is the root, one of `parents` or an ancestor of one: a
// target's programs there would decide for every workload below it, not
// only for those it selects.
bool HoldsWorkloadParent(const std::string& cgroup,
                         const std::set<std::string>& parents);

// The containers SelectContainers selects whose WorkloadCgroup is not right
// below one of `parents` (the watched workload parents): no watch instance
// decides for them, so the target's policy holds only from the moment
// egressd has seen them start and attached it, not from their first
// instruction.
std::vector<Container> SelectedOutsideParents(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& running,
    const std::set<std::string>& parents);

// WorkloadCgroup of each container SelectContainers selects, sorted, each
// once; a cgroup that holds a workload parent (HoldsWorkloadParent, with
// `parents` and WorkloadParentsOf(running)) is left out, into `refused`
// when given.
std::vector<std::string> SelectWorkloadCgroups(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& running,
    const std::set<std::string>& parents = {},
    std::vector<std::string>* refused = nullptr);

// The container whose cgroup is `cgroup` or an ancestor of it.
std::optional<Container> ContainerOfCgroup(
    const std::string& cgroup, const std::vector<Container>& running);

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_SELECTION_H_
