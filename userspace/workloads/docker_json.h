// The Docker Engine API's JSON, read into typed structs at the edge (nothing
// past this file sees JSON). Pure logic.
#ifndef EGRESS_USERSPACE_WORKLOADS_DOCKER_JSON_H_
#define EGRESS_USERSPACE_WORKLOADS_DOCKER_JSON_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/workloads/container.h"

namespace egress::workloads {

// GET /containers/json: the ids of the listed containers.
absl::StatusOr<std::vector<std::string>> ParseContainerIds(
    absl::string_view body);

// GET /containers/{id}/json: id, name, image, labels, State.Running and
// State.Pid (cgroup is left for the caller: it reads /proc/PID/cgroup).
absl::StatusOr<Container> ParseContainerInspect(absl::string_view body);

// What a line of GET /events says about a container.
struct ContainerEvent {
  enum class Kind { kCreate, kStart, kStop, kRename, kOther };
  Kind kind = Kind::kOther;
  std::string id;
  // kCreate: who the container is as the event says (Actor.Attributes,
  // where Docker puts the container's labels, then its `name` and `image`
  // over labels of those keys: such labels cannot be told from them and
  // are left out of `labels`).
  std::string name, image;
  policy::Labels labels;
};
// "create" -> kCreate (with name, image and labels); "start" -> kStart;
// "die", "destroy", "kill"... -> kStop when the container ends (die,
// destroy, stop; Podman's remove); "rename" -> kRename (a target naming a
// container follows the name); anything else (exec_*, attach,
// health_status, events of other types) -> kOther.
absl::StatusOr<ContainerEvent> ParseDockerEvent(absl::string_view line);

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_DOCKER_JSON_H_
