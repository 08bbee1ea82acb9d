// One allow rule of one TCP port to one IPv4 address: the shape of the large
// generated policies that benches and tests write (100,000 such rules is
// issue 13's apply).
#ifndef EGRESS_TESTS_TESTING_ADDRESS_RULE_H_
#define EGRESS_TESTS_TESTING_ADDRESS_RULE_H_

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "userspace/policy/rule.h"

namespace egress::testing {

// Rule `id` allowing TCP port first_port + n % port_span to 10.a.b.c/32,
// where a.b.c are the low 24 bits of n.
inline policy::Rule AddressRule(uint32_t id, uint32_t n, uint16_t first_port,
                                uint32_t port_span) {
  const uint16_t port = static_cast<uint16_t>(first_port + n % port_span);
  policy::Rule r;
  r.id = id;
  r.spec = absl::StrCat(port, "/tcp");
  r.ports = {{policy::Proto::kTcp, port, port}};
  policy::Cidr c;
  c.family = 4;
  c.addr = {10, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
            static_cast<uint8_t>(n)};
  c.prefix_len = 32;
  r.destinations = {c};
  return r;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_ADDRESS_RULE_H_
