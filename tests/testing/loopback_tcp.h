// A TCP client connection to a server the test runs on 127.0.0.1, for tests
// that talk to an endpoint by hand (HTTP requests, stalled clients).
#ifndef EGRESS_TESTS_TESTING_LOOPBACK_TCP_H_
#define EGRESS_TESTS_TESTING_LOOPBACK_TCP_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {

// A connected TCP socket to 127.0.0.1:`port`. connect(), and every later
// blocking send and recv on it, waits at most `io_timeout`.
absl::StatusOr<UniqueFd> ConnectLoopbackTcp(
    int port, absl::Duration io_timeout = absl::Seconds(5));

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_LOOPBACK_TCP_H_
