// Part 2 of egress_workload_bench: many running containers put under
// enforcement at once, by one selector target and by one container target
// each (policy files, one `egressctl apply -f DIR`): the time until every
// container's cgroup has its target's hooks attached, egressd's memory and
// the kernel memory of the BPF objects below its pin directory.
#ifndef EGRESS_BENCH_WORKLOAD_FLEET_H_
#define EGRESS_BENCH_WORKLOAD_FLEET_H_

#include <string>

#include "absl/status/status.h"
#include "bench/egressd_process.h"
#include "tests/testing/dockerd.h"

namespace egress::bench {

// Starts `n` sleepers of `image` on `docker` (the dockerd `egressd`
// follows), measures, and removes the targets and the containers again;
// policy files go below `dir`.
absl::Status FleetPart(testing::Dockerd& docker, EgressdProcess& egressd,
                       const std::string& image, const std::string& dir, int n);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_WORKLOAD_FLEET_H_
