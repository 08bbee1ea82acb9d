// The series of egress_workload_info: for every target that selects
// containers, the running containers it selects now, with who they are
// (name, short id, image, pod) and, for a label selector, the container's
// values of the keys the selector names. Pure logic over the engine's
// targets and the runtime's containers (tests/unit/workload_info_test.cc).
#ifndef EGRESS_USERSPACE_DAEMON_WORKLOAD_INFO_H_
#define EGRESS_USERSPACE_DAEMON_WORKLOAD_INFO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/metrics.h"
#include "userspace/workloads/container.h"

namespace egress {

struct WorkloadSeries {
  // Sorted by target, container name, container id; at most `max_series`.
  std::vector<MetricsSnapshot::Workload> series;
  uint64_t omitted = 0;  // series left out by the cap
};

// The series of `targets` (those that are not workload targets are
// skipped) over `running`.
WorkloadSeries WorkloadSeriesOf(
    const std::vector<control::TargetInfo>& targets,
    const std::vector<workloads::Container>& running,
    size_t max_series = kMaxWorkloadSeries);

// The Prometheus label name of a container label key, as kube-state-metrics
// names them: "label_" + the key with every character outside
// [A-Za-z0-9_] replaced by "_" ("app.kubernetes.io/name" ->
// "label_app_kubernetes_io_name").
std::string PrometheusLabelName(absl::string_view key);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_WORKLOAD_INFO_H_
