// Shorthands the policy unit tests build rules with.
#ifndef EGRESS_TESTS_TESTING_RULE_BUILDERS_H_
#define EGRESS_TESTS_TESTING_RULE_BUILDERS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// A network from its text; a parse failure fails the test.
inline Cidr C(const std::string& text) {
  absl::StatusOr<Cidr> c = Cidr::Parse(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : Cidr{};
}

inline PortProto Tcp(uint16_t lo, uint16_t hi) { return {Proto::kTcp, lo, hi}; }
inline PortProto Tcp(uint16_t p) { return {Proto::kTcp, p, p}; }
inline PortProto Udp(uint16_t lo, uint16_t hi) { return {Proto::kUdp, lo, hi}; }
inline PortProto Udp(uint16_t p) { return {Proto::kUdp, p, p}; }
inline const PortProto kIcmp{Proto::kIcmp};
inline const PortProto kRaw{Proto::kRaw};

// A rule of `ports` to `dests` and `names` (spec "test").
inline Rule MakeRule(uint32_t id, Action action, std::vector<PortProto> ports,
                     std::vector<Cidr> dests = {},
                     std::vector<std::string> names = {}) {
  Rule r;
  r.id = id;
  r.action = action;
  r.spec = "test";
  r.ports.assign(ports.begin(), ports.end());
  r.destinations.assign(dests.begin(), dests.end());
  r.names = std::move(names);
  return r;
}

}  // namespace egress::policy

#endif  // EGRESS_TESTS_TESTING_RULE_BUILDERS_H_
