// MergeEntries (compile_merge.h) on entries as the compiler makes them,
// repeats included: each key once, where it was first listed, with the
// lowest rule id of its listings; groups, then classes, in order.
#include "userspace/policy/compile_merge.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"

namespace egress::policy::compile_internal {
namespace {

constexpr uint32_t kRs = 9;

egress_rule_key Key(uint8_t proto, uint16_t port_class,
                    const std::string& dest) {
  return RuleKey(kRs, proto, port_class, C(dest));
}

// "proto/class dest verdict id" of each entry, in order.
std::vector<std::string> Lines(const Entries& entries) {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries) {
    Cidr c;
    c.family = k.family == EGRESS_FAMILY_IPV4 ? 4 : 6;
    std::memcpy(c.addr.data(), k.addr, 16);
    c.prefix_len =
        static_cast<uint8_t>(k.prefixlen - EGRESS_RULE_KEY_FIXED_BITS);
    out.push_back(absl::StrCat(
        k.proto, "/", ntohs(k.port_class), " ", c.ToString(), " ",
        v.verdict == EGRESS_VERDICT_ALLOW ? "A" : "D", " ", v.rule_id));
  }
  return out;
}

TEST(MergeEntriesTest, ARepeatedKeyIsKeptOnceWhereFirstListedWithItsLowestId) {
  Entries allow, deny, out;
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.5"), 5);
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.2"), 2);
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.5"), 3);
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.9"), 9);
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.2"), 7);
  AddEntry(allow, Key(IPPROTO_TCP, 1, "10.0.0.5"), 4);
  // The same address in another class is another key.
  AddEntry(allow, Key(IPPROTO_TCP, 2, "10.0.0.5"), 8);
  AddEntry(deny, Key(IPPROTO_TCP, 3, "10.0.1.0/24"), 6);
  AddEntry(deny, Key(IPPROTO_TCP, 3, "10.0.1.0/24"), 1);
  MergeEntries(allow, deny, &out);
  EXPECT_EQ(Lines(out), (std::vector<std::string>{
                            "6/1 10.0.0.5 A 3",
                            "6/1 10.0.0.2 A 2",
                            "6/1 10.0.0.9 A 9",
                            "6/2 10.0.0.5 A 8",
                            "6/3 10.0.1.0/24 D 1",
                        }));
}

TEST(MergeEntriesTest, GroupsThenClassesInOrderDeniesFirst) {
  Entries allow, deny, out;
  // Listed out of order: udp before tcp, IPv6 before IPv4, high classes
  // before low ones, ANY (the last class) first.
  AddEntry(allow, Key(IPPROTO_UDP, 4, "10.0.0.1"), 1);
  AddEntry(allow, Key(IPPROTO_TCP, EGRESS_PORT_CLASS_ANY, "10.0.0.2"), 2);
  AddEntry(allow, Key(IPPROTO_TCP, 7, "fd00::1"), 3);
  AddEntry(allow, Key(IPPROTO_TCP, 7, "10.0.0.3"), 4);
  AddEntry(allow, Key(IPPROTO_TCP, 2, "10.0.0.4"), 5);
  AddEntry(deny, Key(IPPROTO_TCP, 7, "10.0.0.6"), 6);
  AddEntry(allow, Key(IPPROTO_TCP, 7, "10.0.0.6"), 8);  // denied: dropped
  // An ANY deny inside an allowed /24 of class 2 is copied into it.
  AddEntry(deny, Key(IPPROTO_UDP, EGRESS_PORT_CLASS_ANY, "10.0.9.9"), 10);
  AddEntry(allow, Key(IPPROTO_UDP, 2, "10.0.9.0/24"), 11);
  MergeEntries(allow, deny, &out);
  EXPECT_EQ(Lines(out), (std::vector<std::string>{
                            "6/2 10.0.0.4 A 5",
                            "6/7 10.0.0.6 D 6",
                            "6/7 10.0.0.3 A 4",
                            "6/65535 10.0.0.2 A 2",
                            "6/7 fd00::1 A 3",
                            "17/2 10.0.9.0/24 A 11",
                            "17/2 10.0.9.9 D 10",
                            "17/4 10.0.0.1 A 1",
                            "17/65535 10.0.9.9 D 10",
                        }));
}

}  // namespace
}  // namespace egress::policy::compile_internal
