// Part 1 of egress_workload_bench: the time from `docker run` to egressd's
// first enforced decision for the container. Its entrypoint connects to a
// loopback address its target's policy denies, as its first act. The same
// `docker run` of a container its target allows, and of one on a second,
// identical dockerd that egressd does not follow (the baseline), are
// interleaved with it: the time until the listener accepts.
#ifndef EGRESS_BENCH_WORKLOAD_FIRST_DECISION_H_
#define EGRESS_BENCH_WORKLOAD_FIRST_DECISION_H_

#include <string>

#include "absl/status/status.h"
#include "bench/egressd_process.h"
#include "tests/testing/dockerd.h"

namespace egress::bench {

// `followed` is the dockerd `egressd` follows (--docker_socket,
// --container_parent) and holds `image` (Dockerd::ImportBusybox). Adds two
// selector targets for the run and removes them after; `runs` rounds of
// three containers, printed as a table.
absl::Status FirstDecisionPart(testing::Dockerd& followed,
                               EgressdProcess& egressd,
                               const std::string& image, int runs);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_WORKLOAD_FIRST_DECISION_H_
