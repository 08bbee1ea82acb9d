// Runs a program where a name lookup cannot leave the test: in a fresh
// network namespace (loopback only) and mount namespace whose
// /etc/resolv.conf names 127.0.0.1 as the only DNS server, /etc/nsswitch.conf
// says "hosts: files dns" and /etc/hosts holds only localhost. A UDP socket
// on 127.0.0.1:53 there counts every datagram the program sends to it (and
// answers none). The namespaces and mounts die with the helper process, also
// when the test fails.
#ifndef EGRESS_TESTS_TESTING_PRIVATE_RESOLVER_H_
#define EGRESS_TESTS_TESTING_PRIVATE_RESOLVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress::testing {

struct PrivateResolverRun {
  int exit_code = -1;     // 128 + signal when killed
  std::string output;     // stdout and stderr, up to 64 KiB
  int dns_datagrams = 0;  // sent to the private resolver
};

// Root only. `argv[0]` is a path (no PATH search). The program is killed
// after `timeout`.
absl::StatusOr<PrivateResolverRun> RunWithPrivateResolver(
    const std::vector<std::string>& argv,
    absl::Duration timeout = absl::Seconds(20));

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_PRIVATE_RESOLVER_H_
