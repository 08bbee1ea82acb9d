// A connection with every member set, for tests of the control protocol's
// encoding and decoding.
#ifndef EGRESS_TESTS_TESTING_SAMPLE_CONNECTION_H_
#define EGRESS_TESTS_TESTING_SAMPLE_CONNECTION_H_

#include "userspace/control/protocol.h"

namespace egress::testing {

inline control::Connection SomeConnection() {
  control::Connection c;
  c.target = "web";
  c.cgroup = "/web/worker";
  c.cgroup_id = 77;
  c.protocol = "tcp";
  c.family = "IPv6";
  c.state = "established";
  c.source = "::1";
  c.source_port = 51234;
  c.destination = "::1";
  c.destination_port = 40001;
  c.inode = 9001;
  c.cookie = 1ull << 40;
  c.uid = 1000;
  c.pid = 4123;
  c.comm = "nc";
  c.reason = "NO_MATCHING_RULE";
  c.why = "no matching rule (default deny)";
  c.action = "cut";
  return c;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_SAMPLE_CONNECTION_H_
