// Which running containers a workload target selects, and which container a
// cgroup belongs to. Pure logic over the runtime's view (DockerWatcher).
#ifndef EGRESS_USERSPACE_WORKLOADS_SELECTION_H_
#define EGRESS_USERSPACE_WORKLOADS_SELECTION_H_

#include <optional>
#include <string>
#include <vector>

#include "userspace/policy/vocabulary.h"
#include "userspace/workloads/container.h"

namespace egress::workloads {

// A target that names containers, not cgroups (kContainer, kSelector).
bool IsWorkloadSource(policy::TargetSource source);

// The running containers that `value` selects: kContainer names one (name,
// id or id prefix, NamesContainer); kSelector is a label selector text
// (policy::ParseLabelSelector; an unparsable one selects nothing). Sorted by
// cgroup, each cgroup once, containers without a cgroup left out.
std::vector<Container> SelectContainers(policy::TargetSource source,
                                        const std::string& value,
                                        const std::vector<Container>& running);

// The container whose cgroup is `cgroup` or an ancestor of it.
std::optional<Container> ContainerOfCgroup(
    const std::string& cgroup, const std::vector<Container>& running);

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_SELECTION_H_
