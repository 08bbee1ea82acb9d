#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

// The merged entries of one verdict, in order.
std::vector<std::pair<egress_rule_key, egress_rule_value>> Entries(
    const CompiledRuleset& c, uint8_t verdict) {
  std::vector<std::pair<egress_rule_key, egress_rule_value>> out;
  for (const auto& e : c.rules) {
    if (e.second.verdict == verdict) out.push_back(e);
  }
  return out;
}
std::vector<std::pair<egress_rule_key, egress_rule_value>> Allows(
    const CompiledRuleset& c) {
  return Entries(c, EGRESS_VERDICT_ALLOW);
}
std::vector<std::pair<egress_rule_key, egress_rule_value>> Denies(
    const CompiledRuleset& c) {
  return Entries(c, EGRESS_VERDICT_DENY);
}

constexpr uint32_t kRs = 42;

std::array<uint8_t, 16> A(const std::string& text) { return C(text).addr; }

const PortProto kTcpAll{Proto::kTcp, 0, 65535};
const PortProto kUdpAll{Proto::kUdp, 0, 65535};

// The tries alone unless a test asks for exact entries: most tests here
// look at the trie entries of whole addresses, which a compile would
// otherwise move to exact_rules (CompileExactTest covers those).
CompiledRuleset MustCompile(const std::vector<Rule>& rules,
                            uint32_t ruleset = kRs, size_t exact_limit = 0) {
  absl::StatusOr<CompiledRuleset> c = Compile(ruleset, rules, exact_limit);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : CompiledRuleset{};
}

// Decision as "ALLOW 3" / "DENY 0" for readable failures.
std::string D(const Decision& d) {
  return (d.verdict == EGRESS_VERDICT_ALLOW ? "ALLOW " : "DENY ") +
         std::to_string(d.rule_id);
}

std::string Eval(const CompiledRuleset& c, uint8_t proto, uint16_t port,
                 const std::string& addr) {
  const Cidr a = C(addr);
  return D(Evaluate(c, kRs, proto, port, a.family, a.addr));
}

// The port class the port_classes entries give `port`, 0 for a miss.
uint16_t ClassOf(const CompiledRuleset& c, uint8_t proto, uint16_t port) {
  int best_len = -1;
  uint16_t cls = 0;
  for (const auto& [k, v] : c.ports) {
    if (k.proto != proto || k.ruleset != kRs) continue;
    const int bits = static_cast<int>(k.prefixlen) - EGRESS_PORT_KEY_FIXED_BITS;
    const uint16_t mask =
        bits == 0 ? 0 : static_cast<uint16_t>(0xffff << (16 - bits));
    if ((ntohs(k.port) & mask) == (port & mask) && bits > best_len) {
      best_len = bits;
      cls = v.port_class;
    }
  }
  return cls;
}

// The "address" Evaluate takes for a name (family EGRESS_FAMILY_NAME): the
// pattern id of `name`, then zeros.
std::array<uint8_t, 16> NameAddr(const std::string& name) {
  std::array<uint8_t, 16> a{};
  const uint64_t pattern = NamePatternId(name);
  std::memcpy(a.data(), &pattern, sizeof(pattern));
  return a;
}

std::string EvalName(const CompiledRuleset& c, uint8_t proto, uint16_t port,
                     const std::string& name) {
  return D(Evaluate(c, kRs, proto, port, EGRESS_FAMILY_NAME, NameAddr(name)));
}

// Whether an exact entry of `c` answers the query (Evaluate looks there
// first). `family` as Evaluate's: 4, 6 or EGRESS_FAMILY_NAME.
bool ExactHit(const CompiledRuleset& c, uint8_t proto, uint16_t port,
              uint8_t family, const std::array<uint8_t, 16>& addr) {
  const uint8_t key_family = family == 4   ? EGRESS_FAMILY_IPV4
                             : family == 6 ? EGRESS_FAMILY_IPV6
                                           : EGRESS_FAMILY_NAME;
  for (const auto& [k, v] : c.exact) {
    if (k.proto == proto && ntohs(k.port) == port && k.family == key_family &&
        std::memcmp(k.addr, addr.data(), 16) == 0) {
      return true;
    }
  }
  return false;
}

TEST(CompileTest, SingleRuleKeysAreExact) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/24")})});
  ASSERT_EQ(c.ports.size(), 1u);
  const auto& [pk, pv] = c.ports[0];
  EXPECT_EQ(pk.prefixlen, 64u);
  EXPECT_EQ(pk.ruleset, kRs);
  EXPECT_EQ(pk.proto, IPPROTO_TCP);
  EXPECT_EQ(pk.pad, 0);
  const auto* port_bytes = reinterpret_cast<const uint8_t*>(&pk.port);
  EXPECT_EQ(port_bytes[0], 0x01);  // 443 = 0x01bb, big-endian
  EXPECT_EQ(port_bytes[1], 0xbb);
  EXPECT_EQ(pv.port_class, 1);
  EXPECT_EQ(pv.pad, 0);

  ASSERT_EQ(Allows(c).size(), 1u);
  EXPECT_TRUE(Denies(c).empty());
  const auto allows = Allows(c);
  const auto& [rk, rv] = allows[0];
  EXPECT_EQ(rk.prefixlen, 64u + 24);
  EXPECT_EQ(rk.ruleset, kRs);
  EXPECT_EQ(rk.proto, IPPROTO_TCP);
  EXPECT_EQ(rk.family, EGRESS_FAMILY_IPV4);
  const auto* class_bytes = reinterpret_cast<const uint8_t*>(&rk.port_class);
  EXPECT_EQ(class_bytes[0], 0x00);
  EXPECT_EQ(class_bytes[1], 0x01);
  const uint8_t want_addr[16] = {10, 0, 0, 0};
  EXPECT_EQ(std::memcmp(rk.addr, want_addr, 16), 0);
  EXPECT_EQ(rv.rule_id, 1u);
  EXPECT_EQ(rv.verdict, EGRESS_VERDICT_ALLOW);
  EXPECT_EQ(rv.flags, 0);  // an address entry: no deny summary
  EXPECT_EQ(rv.v4_deny_octets, 0);
  EXPECT_EQ(c.flags, 0);
}

TEST(CompileTest, CidrBoundaries) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/24")})});
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.0"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.255"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.1.0"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "9.255.255.255"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 443, "10.0.0.1"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "::ffff:10.0.0.1"), "ALLOW 1");
  // Another ruleset id sees nothing.
  EXPECT_EQ(D(Evaluate(c, kRs + 1, IPPROTO_TCP, 443, 4, A("10.0.0.1"))),
            "DENY 0");
}

TEST(CompileTest, PortRangeEdgesAndMinimalPrefixes) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(1000, 2000)}, {C("10.0.0.0/8")})});
  // 1000-1007, 1008-1023, 1024-1535, 1536-1791, 1792-1919, 1920-1983,
  // 1984-1999, 2000.
  EXPECT_EQ(c.ports.size(), 8u);
  for (uint32_t p = 0; p <= 65535; ++p) {
    const bool in = p >= 1000 && p <= 2000;
    ASSERT_EQ(ClassOf(c, IPPROTO_TCP, static_cast<uint16_t>(p)), in ? 1 : 0)
        << p;
  }
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 999, "10.1.1.1"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 1000, "10.1.1.1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 2000, "10.1.1.1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 2001, "10.1.1.1"), "DENY 0");
}

TEST(CompileTest, WholePortSpaceIsOnePrefix) {
  const CompiledRuleset c =
      MustCompile({MakeRule(1, Action::kAllow, {Tcp(1, 65535)})});
  // 1-65535 is 16 prefixes (1, 2-3, 4-7, ..., 32768-65535).
  EXPECT_EQ(c.ports.size(), 16u);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 0), 0);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 1), 1);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 65535), 1);
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 0, "1.2.3.4"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 65535, "1.2.3.4"), "ALLOW 1");
  const CompiledRuleset full =
      MustCompile({MakeRule(1, Action::kAllow, {kTcpAll})});
  EXPECT_TRUE(full.ports.empty());
  EXPECT_EQ(Eval(full, IPPROTO_TCP, 0, "1.2.3.4"), "ALLOW 1");
}

TEST(CompileTest, OverlappingRangesSplitIntoClasses) {
  const CompiledRuleset c =
      MustCompile({MakeRule(1, Action::kAllow, {Tcp(1000, 2000)}),
                   MakeRule(2, Action::kDeny, {Tcp(1500, 2500)}),
                   MakeRule(3, Action::kAllow, {Udp(1500, 1500)})});
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 1000), 1);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 1499), 1);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 1500), 2);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 2000), 2);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 2001), 3);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 2500), 3);
  EXPECT_EQ(ClassOf(c, IPPROTO_TCP, 2501), 0);
  EXPECT_EQ(ClassOf(c, IPPROTO_UDP, 1500), 1);  // classes are per protocol
  // Rule 1: classes 1-2, two destinations each, but class 2 is wholly
  // denied by rule 2, so only class 1 stays; rule 3: class 1 udp.
  EXPECT_EQ(Allows(c).size(), 4u);
  EXPECT_EQ(Denies(c).size(), 4u);  // rule 2: classes 2-3
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 1499, "1.1.1.1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 1500, "1.1.1.1"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 2000, "::1"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 2500, "1.1.1.1"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 2501, "1.1.1.1"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 1500, "1.1.1.1"), "ALLOW 3");
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 1501, "1.1.1.1"), "DENY 0");
}

TEST(CompileTest, DenyBeatsMoreSpecificAllow) {
  // Narrower address.
  CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kDeny, {Tcp(443, 443)}, {C("10.0.0.0/8")}),
       MakeRule(2, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.5")})});
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.5"), "DENY 1");
  // Narrower port: deny every tcp port, allow one.
  c = MustCompile(
      {MakeRule(1, Action::kDeny, {kTcpAll}, {C("10.0.0.0/8")}),
       MakeRule(2, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.5")})});
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.5"), "DENY 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "11.0.0.5"), "DENY 0");
  // Deny on a class, allow on every port.
  c = MustCompile({MakeRule(1, Action::kAllow, {kTcpAll}),
                   MakeRule(2, Action::kDeny, {Tcp(25, 25)})});
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 25, "10.0.0.5"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 26, "10.0.0.5"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 24, "2001:db8::1"), "ALLOW 1");
}

TEST(CompileTest, Ipv6) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443, 443)}, {C("2001:db8::/32")}),
       MakeRule(2, Action::kDeny, {Tcp(443, 443)}, {C("2001:db8:bad::/48")})});
  ASSERT_EQ(Allows(c).size(), 1u);
  EXPECT_EQ(Allows(c)[0].first.family, EGRESS_FAMILY_IPV6);
  EXPECT_EQ(Allows(c)[0].first.prefixlen, 64u + 32);
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "2001:db8:ffff::1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "2001:db8:bad::1"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "2001:db9::"), "DENY 0");
  // The same leading bytes as an IPv4 address never match an IPv6 key.
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "32.1.13.184"), "DENY 0");
}

TEST(CompileTest, NoDestinationMeansBothFamilies) {
  const CompiledRuleset c =
      MustCompile({MakeRule(1, Action::kAllow, {Tcp(22, 22)})});
  ASSERT_EQ(Allows(c).size(), 2u);
  EXPECT_EQ(Allows(c)[0].first.family, EGRESS_FAMILY_IPV4);
  EXPECT_EQ(Allows(c)[0].first.prefixlen, 64u);
  EXPECT_EQ(Allows(c)[1].first.family, EGRESS_FAMILY_IPV6);
  EXPECT_EQ(Allows(c)[1].first.prefixlen, 64u);
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 22, "255.255.255.255"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 22, "ffff::1"), "ALLOW 1");
}

TEST(CompileTest, AnyCoversTcpUdpAndIcmp) {
  const CompiledRuleset c =
      MustCompile({MakeRule(1, Action::kAllow, {kTcpAll, kUdpAll, kIcmp})});
  EXPECT_TRUE(c.ports.empty());
  EXPECT_EQ(Allows(c).size(), 6u);
  std::set<std::pair<int, int>> proto_family;
  for (const auto& [k, v] : Allows(c)) {
    EXPECT_EQ(ntohs(k.port_class), EGRESS_PORT_CLASS_ANY);
    proto_family.insert({k.proto, k.family});
  }
  EXPECT_EQ(proto_family, (std::set<std::pair<int, int>>{{IPPROTO_TCP, 4},
                                                         {IPPROTO_TCP, 6},
                                                         {IPPROTO_UDP, 4},
                                                         {IPPROTO_UDP, 6},
                                                         {IPPROTO_ICMP, 4},
                                                         {IPPROTO_ICMPV6, 6}}));
  EXPECT_EQ(c.flags, EGRESS_TF_ALLOW_ICMP);
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 0, "1.2.3.4"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 0, "1.2.3.4"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_ICMPV6, 0, "::1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 0, "::1"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_SCTP, 80, "1.2.3.4"), "DENY 0");
}

TEST(CompileTest, IcmpUsesFamilyProtocol) {
  const CompiledRuleset c =
      MustCompile({MakeRule(1, Action::kAllow, {kIcmp},
                            {C("10.0.0.0/8"), C("2001:db8::/32")}),
                   MakeRule(2, Action::kDeny, {kIcmp}, {C("10.9.0.0/16")})});
  ASSERT_EQ(Allows(c).size(), 2u);
  EXPECT_EQ(Allows(c)[0].first.proto, IPPROTO_ICMP);
  EXPECT_EQ(Allows(c)[1].first.proto, IPPROTO_ICMPV6);
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 0, "10.1.2.3"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 12345, "10.1.2.3"), "ALLOW 1");  // no ports
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 0, "10.9.2.3"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_ICMPV6, 0, "2001:db8::1"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_ICMP, 0, "11.0.0.1"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 0, "10.1.2.3"), "DENY 0");
  EXPECT_EQ(c.flags, EGRESS_TF_ALLOW_ICMP);
}

TEST(CompileTest, Flags) {
  EXPECT_EQ(MustCompile({MakeRule(1, Action::kAllow, {kRaw})}).flags,
            EGRESS_TF_ALLOW_RAW);
  const CompiledRuleset raw =
      MustCompile({MakeRule(1, Action::kAllow, {kRaw})});
  EXPECT_TRUE(Allows(raw).empty());
  EXPECT_TRUE(Denies(raw).empty());
  EXPECT_TRUE(raw.ports.empty());
  // Deny wins for raw too.
  EXPECT_EQ(MustCompile({MakeRule(1, Action::kAllow, {kRaw}),
                         MakeRule(2, Action::kDeny, {kRaw})})
                .flags,
            0);
  EXPECT_EQ(MustCompile({MakeRule(1, Action::kDeny, {kIcmp})}).flags, 0);
  EXPECT_EQ(MustCompile({MakeRule(1, Action::kAllow, {kIcmp}),
                         MakeRule(2, Action::kAllow, {kRaw})})
                .flags,
            EGRESS_TF_ALLOW_ICMP | EGRESS_TF_ALLOW_RAW);
  EXPECT_EQ(MustCompile({MakeRule(1, Action::kAllow, {kTcpAll})}).flags, 0);
  EXPECT_EQ(MustCompile({}).flags, 0);
}

TEST(CompileTest, DuplicateKeysKeepLowestId) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(5, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/8")}),
       MakeRule(3, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/8")}),
       MakeRule(4, Action::kAllow, {Tcp(443, 443), Tcp(443, 443)},
                {C("10.0.0.0/8"), C("10.0.0.0/8")}),
       MakeRule(6, Action::kDeny, {Tcp(443, 443)}, {C("10.0.0.0/8")})});
  // The deny on the same key wins: the allows are merged away.
  EXPECT_TRUE(Allows(c).empty());
  ASSERT_EQ(Denies(c).size(), 1u);
  EXPECT_EQ(Denies(c)[0].second.rule_id, 6u);
  const CompiledRuleset a = MustCompile(
      {MakeRule(5, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/8")}),
       MakeRule(3, Action::kAllow, {Tcp(443, 443)}, {C("10.0.0.0/8")})});
  ASSERT_EQ(Allows(a).size(), 1u);
  EXPECT_EQ(Allows(a)[0].second.rule_id, 3u);
}

TEST(CompileTest, AnyPortDenyIsCopiedIntoPortClassesItHidesIn) {
  // allow 443/tcp anywhere; deny any 169.254.169.254: the deny lies inside
  // the allow's /0 of class "443", so it must be found by that probe too.
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443, 443)}),
       MakeRule(2, Action::kDeny, {kTcpAll}, {C("169.254.169.254")}),
       MakeRule(3, Action::kAllow, {Tcp(80, 80)}, {C("10.0.0.0/8")})});
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "169.254.169.254"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "169.254.169.253"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 80, "10.1.2.3"), "ALLOW 3");
  // Copied into class 443 (inside 0.0.0.0/0), not into class 80 (10/8 does
  // not contain it): one ANY entry plus one copy.
  EXPECT_EQ(Denies(c).size(), 2u);
}

TEST(CompileTest, EmptyRuleSetDeniesEverything) {
  const CompiledRuleset c = MustCompile({});
  EXPECT_TRUE(c.ports.empty());
  EXPECT_TRUE(Allows(c).empty());
  EXPECT_TRUE(Denies(c).empty());
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 80, "1.1.1.1"), "DENY 0");
}

TEST(CompileTest, RejectsBadInput) {
  EXPECT_EQ(Compile(0, {}).status().message(), "ruleset 0 is reserved");
  auto error = [](Rule r) {
    absl::StatusOr<CompiledRuleset> c = Compile(kRs, {r});
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  };
  EXPECT_EQ(error(MakeRule(0, Action::kAllow, {kTcpAll})),
            "rule 0: id 0 is reserved for the default action");
  EXPECT_EQ(error(MakeRule(3, Action::kAllow, {})), "rule 3: no ports");
  EXPECT_EQ(error(MakeRule(3, Action::kAllow, {Tcp(20, 10)})),
            "rule 3: port range 20-10 has its low end above its high end");
  Cidr bad = C("10.0.0.0/8");
  bad.addr[3] = 1;
  EXPECT_EQ(error(MakeRule(3, Action::kAllow, {kTcpAll}, {bad})),
            "rule 3: bad destination (family 4, prefix length 8): host bits "
            "set, bad prefix length or bad IPv4 layout");
}

// Names compile to tcp and udp entries only: a name rule with icmp alone
// would leave just the target's icmp flag, allowing ping sockets to every
// address. The parsers refuse it; Compile does too, for rules that come
// another way (an old state file).
TEST(CompileTest, RejectsANameRuleWithoutTcpOrUdp) {
  Rule r = MakeRule(3, Action::kAllow, {kIcmp});
  r.names = {"ping.example.com"};
  r.spec = "icmp";
  absl::StatusOr<CompiledRuleset> c = Compile(kRs, {r});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "rule 3: a name takes tcp and udp ports, not icmp: "
            "'ping.example.com'");
  r.ports.push_back(Tcp(443, 443));
  absl::StatusOr<CompiledRuleset> with_tcp = Compile(kRs, {r});
  EXPECT_TRUE(with_tcp.ok()) << with_tcp.status();
}

TEST(CompileTest, PortClassLimit) {
  std::vector<PortProto> ports;
  for (uint32_t p = 1; p <= 0xfffe; ++p) {
    ports.push_back(Tcp(static_cast<uint16_t>(p), static_cast<uint16_t>(p)));
  }
  // The tries alone (exact_limit 0): the classes are what is counted here.
  absl::StatusOr<CompiledRuleset> ok =
      Compile(kRs, {MakeRule(1, Action::kAllow, ports, {C("10.0.0.1")})}, 0);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ClassOf(*ok, IPPROTO_TCP, 0xfffe), 0xfffe);
  EXPECT_EQ(Allows(*ok).size(), 0xfffeu);
  ports.push_back(Tcp(0xffff, 0xffff));
  absl::StatusOr<CompiledRuleset> too_many =
      Compile(kRs, {MakeRule(1, Action::kAllow, ports, {C("10.0.0.1")})});
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(too_many.status().message(),
            "too many distinct port ranges: more than 65534 port classes");
}

TEST(CompileTest, RuleMapCapacity) {
  // A 1-65534 range split into 65534 single-port classes by another rule,
  // times 17 destinations, plus the deny entries, is more than the map holds.
  std::vector<PortProto> ports;
  for (uint32_t p = 1; p <= 0xfffe; ++p) {
    ports.push_back(Tcp(static_cast<uint16_t>(p), static_cast<uint16_t>(p)));
  }
  std::vector<Rule> rules = {
      MakeRule(1, Action::kDeny, ports, {C("10.0.0.1")})};
  std::vector<Cidr> dests;
  for (int i = 0; i < 17; ++i)
    dests.push_back(C("10.0.1." + std::to_string(i)));
  rules.push_back(MakeRule(2, Action::kAllow, {Tcp(1, 0xfffe)}, dests));
  // The tries alone: moving up to EGRESS_MAX_EXACT_PER_SET entries out of
  // them would make this fit.
  absl::StatusOr<CompiledRuleset> c = Compile(kRs, rules, 0);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(),
            "rules need 1179612 entries; the rules map holds at most "
            "1048576");
}

TEST(CompileTest, HundredThousandRules) {
  std::vector<Rule> rules;
  rules.reserve(100000);
  for (uint32_t i = 1; i <= 100000; ++i) {
    Cidr dest;
    dest.family = 4;
    dest.prefix_len = 32;
    dest.addr[0] = 10;
    dest.addr[1] = static_cast<uint8_t>(i >> 16);
    dest.addr[2] = static_cast<uint8_t>(i >> 8);
    dest.addr[3] = static_cast<uint8_t>(i);
    const uint16_t port = static_cast<uint16_t>(1000 + i % 1000);
    rules.push_back(MakeRule(i, i % 10 == 0 ? Action::kDeny : Action::kAllow,
                             {Tcp(port, port)}, {dest}));
  }
  // Its speed is bench/'s (egress_scale_bench); here, what it makes.
  absl::StatusOr<CompiledRuleset> c = Compile(kRs, rules);
  ASSERT_TRUE(c.ok()) << c.status();
  // One host and one port each: all in exact_rules, nothing left in the
  // tries, so no port class is named there either.
  EXPECT_TRUE(c->ports.empty());
  EXPECT_TRUE(c->rules.empty());
  ASSERT_EQ(c->exact.size(), 100000u);
  size_t denies = 0;
  for (const auto& [k, v] : c->exact)
    denies += v.verdict == EGRESS_VERDICT_DENY;
  EXPECT_EQ(denies, 10000u);
  // The tries alone: one single-port class each.
  absl::StatusOr<CompiledRuleset> tries = Compile(kRs, rules, 0);
  ASSERT_TRUE(tries.ok());
  EXPECT_EQ(tries->ports.size(), 1000u);
  EXPECT_EQ(Allows(*tries).size(), 90000u);
  EXPECT_EQ(Denies(*tries).size(), 10000u);
  EXPECT_EQ(Eval(*tries, IPPROTO_TCP, 1345, "10.0.48.57"), "ALLOW 12345");
  // Rule 12345: 10.0.48.57, port 1345, allow. Rule 12340: deny.
  EXPECT_EQ(Eval(*c, IPPROTO_TCP, 1345, "10.0.48.57"), "ALLOW 12345");
  EXPECT_EQ(Eval(*c, IPPROTO_TCP, 1346, "10.0.48.57"), "DENY 0");
  EXPECT_EQ(Eval(*c, IPPROTO_TCP, 1340, "10.0.48.52"), "DENY 12340");
}

// Random rules and queries from small pools so that ranges, networks and
// queries overlap often; Evaluate must agree with EvaluateNaive.
class RandomRules {
 public:
  explicit RandomRules(uint32_t seed) : rng_(seed) {}

  std::vector<Rule> Rules(int n, int deny_percent) {
    std::vector<Rule> rules;
    for (int i = 0; i < n; ++i) {
      Rule r;
      r.id = static_cast<uint32_t>(i + 1);
      r.action = Pick(100) < deny_percent ? Action::kDeny : Action::kAllow;
      const int nports = 1 + Pick(3);
      for (int j = 0; j < nports; ++j) r.ports.push_back(RandomPorts());
      const int ndest = Pick(4) == 0 ? 0 : 1 + Pick(3);
      for (int j = 0; j < ndest; ++j) r.destinations.push_back(RandomCidr());
      rules.push_back(std::move(r));
    }
    return rules;
  }

  struct Query {
    uint8_t proto;
    uint16_t port;
    Cidr addr;  // a host
  };

  Query RandomQuery() {
    static constexpr uint8_t kProtos[] = {IPPROTO_TCP, IPPROTO_UDP,
                                          IPPROTO_ICMP, IPPROTO_ICMPV6};
    Query q;
    q.proto = Pick(5) < 2 ? kProtos[0] : kProtos[Pick(4)];
    q.port = Pick(4) == 0 ? static_cast<uint16_t>(Pick(65536)) : PoolPort();
    q.addr = RandomAddress();
    return q;
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  uint16_t PoolPort() {
    static constexpr int kPool[] = {0,    1,     22,    25,   53,   80,
                                    443,  1000,  1023,  1024, 2000, 8080,
                                    8443, 32768, 65534, 65535};
    const int p = kPool[Pick(16)] + Pick(3) - 1;
    return static_cast<uint16_t>(std::clamp(p, 0, 65535));
  }

  PortProto RandomPorts() {
    switch (Pick(10)) {
      case 0:
        return kIcmp;
      case 1:
        return kRaw;
      case 2:
        return kTcpAll;
      case 3:
        return kUdpAll;
      default: {
        const uint16_t lo = std::max<uint16_t>(1, PoolPort());
        static constexpr int kWidths[] = {0, 0, 1, 10, 100, 1000, 30000};
        const int width = Pick(8) == 7 ? Pick(65536) : kWidths[Pick(7)];
        const auto hi = static_cast<uint16_t>(std::min(65535, lo + width));
        return {Pick(2) == 0 ? Proto::kTcp : Proto::kUdp, lo, hi};
      }
    }
  }

  // An address near 10.0.0.0/14 or 2001:db8::/46, random low bits.
  Cidr RandomAddress() {
    Cidr c;
    if (Pick(10) < 7) {
      c.family = 4;
      c.prefix_len = 32;
      c.addr[0] = Pick(20) == 0 ? static_cast<uint8_t>(Pick(256)) : 10;
      c.addr[1] = static_cast<uint8_t>(Pick(4));
      c.addr[2] = static_cast<uint8_t>(Pick(4));
      // Around the /26 boundaries: 255, 0, 1, 63, 64, 65, ...
      c.addr[3] = static_cast<uint8_t>(
          Pick(4) == 0 ? Pick(256) : (Pick(4) * 64 + Pick(3) + 255) & 0xff);
    } else {
      c.family = 6;
      c.prefix_len = 128;
      c.addr = {0x20, 0x01, 0x0d, 0xb8, 0, static_cast<uint8_t>(Pick(4))};
      c.addr[15] = static_cast<uint8_t>(Pick(256));
      c.addr[14] = static_cast<uint8_t>(Pick(2));
    }
    return c;
  }

  Cidr RandomCidr() {
    Cidr c = RandomAddress();
    static constexpr int kV4[] = {0, 8, 14, 16, 22, 24, 25, 26, 30, 31, 32, 32};
    static constexpr int kV6[] = {0, 32, 44, 46, 48, 64, 112, 120, 127, 128};
    c.prefix_len =
        static_cast<uint8_t>(c.family == 4 ? kV4[Pick(12)] : kV6[Pick(10)]);
    for (int i = 0; i < 16; ++i) {
      const int bits = c.prefix_len - 8 * i;
      if (bits <= 0) {
        c.addr[i] = 0;
      } else if (bits < 8) {
        c.addr[i] &= static_cast<uint8_t>(0xff00 >> bits);
      }
    }
    return c;
  }

  std::mt19937 rng_;
};

// exact_rules (compile_exact.h): whole addresses of classes of at most
// EGRESS_EXACT_CLASS_PORTS ports leave the trie, a key per port.
TEST(CompileExactTest, WholeAddressOfFewPortsMoves) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443)}, {C("10.0.0.5/32")}),
       MakeRule(2, Action::kAllow, {Udp(5000, 5003)}, {C("2001:db8::7/128")})},
      kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_TRUE(c.rules.empty());
  ASSERT_EQ(c.exact.size(), 5u);
  const auto& [k, v] = c.exact[0];
  EXPECT_EQ(k.ruleset, kRs);
  EXPECT_EQ(k.proto, IPPROTO_TCP);
  EXPECT_EQ(k.family, EGRESS_FAMILY_IPV4);
  EXPECT_EQ(ntohs(k.port), 443);
  const uint8_t want[16] = {10, 0, 0, 5};
  EXPECT_EQ(std::memcmp(k.addr, want, 16), 0);
  EXPECT_EQ(v.rule_id, 1u);
  EXPECT_EQ(v.verdict, EGRESS_VERDICT_ALLOW);
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(c.exact[i].first.proto, IPPROTO_UDP);
    EXPECT_EQ(c.exact[i].first.family, EGRESS_FAMILY_IPV6);
    EXPECT_EQ(ntohs(c.exact[i].first.port), 5000 + i - 1);
    EXPECT_EQ(c.exact[i].second.rule_id, 2u);
  }
  // No trie entry names their classes: port_classes needs none.
  EXPECT_TRUE(c.ports.empty());
  EXPECT_EQ(c.classes.size(), 2u);
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.5"), "ALLOW 1");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 444, "10.0.0.5"), "DENY 0");
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 5003, "2001:db8::7"), "ALLOW 2");
  EXPECT_EQ(Eval(c, IPPROTO_UDP, 5004, "2001:db8::7"), "DENY 0");
}

TEST(CompileExactTest, NetworksWideClassesAnyPortAndIcmpStay) {
  const CompiledRuleset c = MustCompile(
      {MakeRule(1, Action::kAllow, {Tcp(443)}, {C("10.0.0.0/24")}),
       MakeRule(2, Action::kAllow, {Tcp(8000, 8004)}, {C("10.0.1.5/32")}),
       MakeRule(3, Action::kAllow, {kTcpAll}, {C("10.0.2.5/32")}),
       MakeRule(4, Action::kAllow, {kIcmp}, {C("10.0.3.5/32")})},
      kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_TRUE(c.exact.empty());
  EXPECT_EQ(c.rules.size(), 4u);
}

TEST(CompileExactTest, DenyInsideAnAllowMovesWithItsVerdict) {
  // The deny of every port is copied into the allow's class (the longest
  // match there), and that copy is a whole address of one port.
  const std::vector<Rule> rules = {
      MakeRule(1, Action::kAllow, {Tcp(443)}, {C("10.0.0.0/8")}),
      MakeRule(2, Action::kDeny, {kTcpAll}, {C("10.0.0.9/32")})};
  const CompiledRuleset c = MustCompile(rules, kRs, EGRESS_MAX_EXACT_PER_SET);
  ASSERT_EQ(c.exact.size(), 1u);
  EXPECT_EQ(c.exact[0].second.verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(c.exact[0].second.rule_id, 2u);
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.9"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 80, "10.0.0.9"), "DENY 2");
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.8"), "ALLOW 1");
  // An allow a deny covers is dropped before any move: nothing to probe.
  const CompiledRuleset covered =
      MustCompile({MakeRule(1, Action::kDeny, {kTcpAll}, {C("10.0.0.0/8")}),
                   MakeRule(2, Action::kAllow, {Tcp(443)}, {C("10.0.0.9/32")})},
                  kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_TRUE(covered.exact.empty());
  EXPECT_EQ(Eval(covered, IPPROTO_TCP, 443, "10.0.0.9"), "DENY 1");
}

// Name entries of a small class move like whole addresses: the key holds
// the pattern id where an address would be (bpf/lib/names.h probes it).
TEST(CompileExactTest, NamesOfFewPortsMove) {
  Rule api = MakeRule(1, Action::kAllow, {Tcp(443)});
  api.names = {"api.example.com"};
  Rule wild = MakeRule(2, Action::kAllow, {Udp(5000, 5003)});
  wild.names = {"*.example.com"};
  // A deny of the same name and port moves with its verdict.
  Rule bad = MakeRule(3, Action::kDeny, {Tcp(443)});
  bad.names = {"bad.example.com"};
  Rule bad_allow = MakeRule(4, Action::kAllow, {Tcp(443)});
  bad_allow.names = {"bad.example.com"};
  const CompiledRuleset c =
      MustCompile({api, wild, bad, bad_allow}, kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_TRUE(c.rules.empty());
  EXPECT_TRUE(c.ports.empty());
  EXPECT_TRUE(c.flags & EGRESS_TF_NAME_RULES);
  ASSERT_EQ(c.exact.size(), 6u);
  const std::array<uint8_t, 16> want = NameAddr("api.example.com");
  auto api_entry = std::find_if(c.exact.begin(), c.exact.end(), [&](auto& e) {
    return std::memcmp(e.first.addr, want.data(), 16) == 0;
  });
  ASSERT_NE(api_entry, c.exact.end());
  const auto& [k, v] = *api_entry;
  EXPECT_EQ(k.ruleset, kRs);
  EXPECT_EQ(k.proto, IPPROTO_TCP);
  EXPECT_EQ(k.family, EGRESS_FAMILY_NAME);
  EXPECT_EQ(ntohs(k.port), 443);
  EXPECT_EQ(v.rule_id, 1u);
  EXPECT_EQ(v.verdict, EGRESS_VERDICT_ALLOW);
  int udp = 0, denies = 0;
  for (const auto& [key, value] : c.exact) {
    EXPECT_EQ(key.family, EGRESS_FAMILY_NAME);
    udp += key.proto == IPPROTO_UDP;
    denies += value.verdict == EGRESS_VERDICT_DENY;
  }
  EXPECT_EQ(udp, 4);
  EXPECT_EQ(denies, 1);
  EXPECT_EQ(EvalName(c, IPPROTO_TCP, 443, "api.example.com"), "ALLOW 1");
  EXPECT_EQ(EvalName(c, IPPROTO_TCP, 444, "api.example.com"), "DENY 0");
  EXPECT_EQ(EvalName(c, IPPROTO_UDP, 443, "api.example.com"), "DENY 0");
  EXPECT_EQ(EvalName(c, IPPROTO_UDP, 5002, "*.example.com"), "ALLOW 2");
  EXPECT_EQ(EvalName(c, IPPROTO_TCP, 443, "bad.example.com"), "DENY 3");
  // No address is allowed by a name rule.
  EXPECT_EQ(Eval(c, IPPROTO_TCP, 443, "10.0.0.1"), "DENY 0");
}

TEST(CompileExactTest, NamesOfARangeOrAnyPortStay) {
  Rule range = MakeRule(1, Action::kAllow, {Tcp(8000, 8010)});
  range.names = {"api.example.com"};
  Rule any = MakeRule(2, Action::kDeny, {kTcpAll, kUdpAll});
  any.names = {"*.tracker.example"};
  const CompiledRuleset c =
      MustCompile({range, any}, kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_TRUE(c.exact.empty());
  ASSERT_EQ(c.rules.size(), 3u);
  for (const auto& [k, v] : c.rules) {
    EXPECT_EQ(k.family, EGRESS_FAMILY_NAME);
  }
  EXPECT_EQ(c.ports.size(), 3u);  // 8000-8007, 8008-8009, 8010
  EXPECT_EQ(EvalName(c, IPPROTO_TCP, 8005, "api.example.com"), "ALLOW 1");
  EXPECT_EQ(EvalName(c, IPPROTO_TCP, 8011, "api.example.com"), "DENY 0");
  EXPECT_EQ(EvalName(c, IPPROTO_UDP, 53, "*.tracker.example"), "DENY 2");
}

TEST(CompileExactTest, LimitCountsNamesToo) {
  std::vector<Rule> rules;
  for (uint32_t i = 1; i <= 6; ++i) {
    Rule r = MakeRule(i, Action::kAllow, {Tcp(1000 + i)});
    r.names = {"h" + std::to_string(i) + ".example.com"};
    rules.push_back(std::move(r));
  }
  for (uint32_t i = 7; i <= 10; ++i) {
    rules.push_back(MakeRule(i, Action::kAllow, {Tcp(1000 + i)},
                             {C("10.0.0." + std::to_string(i) + "/32")}));
  }
  const CompiledRuleset none = MustCompile(rules, kRs, 0);
  EXPECT_TRUE(none.exact.empty());
  EXPECT_EQ(none.rules.size(), 10u);
  const CompiledRuleset some = MustCompile(rules, kRs, 4);
  EXPECT_EQ(some.exact.size(), 4u);
  EXPECT_EQ(some.rules.size(), 6u);
  // Eight: whatever moves first, at least four are names, and the limit
  // holds with them.
  const CompiledRuleset eight = MustCompile(rules, kRs, 8);
  ASSERT_EQ(eight.exact.size(), 8u);
  EXPECT_EQ(eight.rules.size(), 2u);
  int names = 0;
  for (const auto& [k, v] : eight.exact) {
    names += k.family == EGRESS_FAMILY_NAME;
  }
  EXPECT_GE(names, 4);
  const CompiledRuleset all = MustCompile(rules, kRs, EGRESS_MAX_EXACT_PER_SET);
  EXPECT_EQ(all.exact.size(), 10u);
  EXPECT_TRUE(all.rules.empty());
  for (uint32_t i = 1; i <= 6; ++i) {
    const std::string name = "h" + std::to_string(i) + ".example.com";
    const std::string want = "ALLOW " + std::to_string(i);
    for (const CompiledRuleset* c : {&none, &some, &eight, &all}) {
      EXPECT_EQ(EvalName(*c, IPPROTO_TCP, 1000 + i, name), want);
      EXPECT_EQ(EvalName(*c, IPPROTO_TCP, 1001 + i, name), "DENY 0");
    }
  }
}

TEST(CompileExactTest, LimitKeepsTheRestInTheTrie) {
  std::vector<Rule> rules;
  for (uint32_t i = 1; i <= 10; ++i) {
    rules.push_back(MakeRule(i, Action::kAllow, {Tcp(1000 + i)},
                             {C("10.0.0." + std::to_string(i) + "/32")}));
  }
  const CompiledRuleset none = MustCompile(rules, kRs, 0);
  EXPECT_TRUE(none.exact.empty());
  EXPECT_EQ(none.rules.size(), 10u);
  const CompiledRuleset some = MustCompile(rules, kRs, 4);
  EXPECT_EQ(some.exact.size(), 4u);
  EXPECT_EQ(some.rules.size(), 6u);
  // The default limit of a whole compile moves them all.
  absl::StatusOr<CompiledRuleset> all = Compile(kRs, rules);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->exact.size(), 10u);
  EXPECT_TRUE(all->rules.empty());
  for (uint32_t i = 1; i <= 10; ++i) {
    const std::string host = "10.0.0." + std::to_string(i);
    const std::string want = "ALLOW " + std::to_string(i);
    EXPECT_EQ(Eval(some, IPPROTO_TCP, 1000 + i, host), want);
    EXPECT_EQ(Eval(*all, IPPROTO_TCP, 1000 + i, host), want);
    EXPECT_EQ(Eval(*all, IPPROTO_TCP, 1001 + i, host), "DENY 0");
  }
}

TEST(CompilePropertyTest, EvaluateAgreesWithNaive) {
  RandomRules gen(20240611);
  // Names from a small pool go to some rules (their own generator: the
  // address rules are those of the generator alone).
  static constexpr const char* kNames[] = {"a.example.com", "b.example.com",
                                           "*.example.com", "c.example.org"};
  std::mt19937 name_rng(20261204);
  int allowed = 0, denied_by_rule = 0, defaulted = 0;
  int name_allowed = 0, name_denied = 0, name_exact_hits = 0;
  size_t exact_entries = 0, name_exact_entries = 0;
  int exact_hits = 0;
  for (int round = 0; round < 40; ++round) {
    // From a few broad rules to many narrow ones, mostly allows.
    static constexpr int kSizes[] = {10, 40, 150, 300};
    static constexpr int kDenyPercent[] = {3, 10, 2, 1};
    std::vector<Rule> rules =
        gen.Rules(kSizes[round % 4], kDenyPercent[round % 4]);
    for (Rule& r : rules) {
      if (name_rng() % 4 != 0) continue;
      r.names.push_back(kNames[name_rng() % 4]);
      if (name_rng() % 3 == 0) r.names.push_back(kNames[name_rng() % 4]);
      std::sort(r.names.begin(), r.names.end());
      r.names.erase(std::unique(r.names.begin(), r.names.end()), r.names.end());
      // A name takes tcp and udp ports: an icmp-only rule keeps none
      // (Compile refuses it). Drawn all the same, so the draws stay in step.
      if (std::none_of(r.ports.begin(), r.ports.end(), [](const PortProto& pp) {
            return pp.proto == Proto::kTcp || pp.proto == Proto::kUdp;
          })) {
        r.names.clear();
      }
    }
    // Three forms of the same set: the tries alone, with every entry that
    // can move in exact_rules, and with only some moved (a limit reached).
    const CompiledRuleset forms[] = {
        MustCompile(rules), MustCompile(rules, kRs, EGRESS_MAX_EXACT_PER_SET),
        MustCompile(rules, kRs, 7)};
    exact_entries += forms[1].exact.size();
    for (const auto& [k, v] : forms[1].exact) {
      name_exact_entries += k.family == EGRESS_FAMILY_NAME;
    }
    ASSERT_LE(forms[2].exact.size(), 7u);
    for (int q = 0; q < 500; ++q) {
      RandomRules::Query query = gen.RandomQuery();
      // Every third query goes to a rule's own first address and port, so
      // exact entries answer some.
      if (const Rule& r = rules[q % rules.size()];
          q % 3 == 1 && !r.destinations.empty() && !r.ports.empty() &&
          (r.ports[0].proto == Proto::kTcp ||
           r.ports[0].proto == Proto::kUdp)) {
        query.addr = r.destinations[0];
        query.addr.prefix_len = query.addr.family == 4 ? 32 : 128;
        query.proto =
            r.ports[0].proto == Proto::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
        query.port = r.ports[0].hi;
      }
      const Decision fast = Evaluate(forms[q % 3], kRs, query.proto, query.port,
                                     query.addr.family, query.addr.addr);
      const Decision naive = EvaluateNaive(rules, query.proto, query.port,
                                           query.addr.family, query.addr.addr);
      exact_hits += ExactHit(forms[q % 3], query.proto, query.port,
                             query.addr.family, query.addr.addr);
      const std::string where = "round " + std::to_string(round) + " proto " +
                                std::to_string(query.proto) + " port " +
                                std::to_string(query.port) + " addr " +
                                query.addr.ToString();
      ASSERT_EQ(fast.verdict, naive.verdict) << where;
      ASSERT_EQ(fast.rule_id == 0, naive.rule_id == 0) << where;
      if (fast.rule_id != 0) {
        // The reported rule really matches and has the verdict's action.
        const Rule& r = rules[fast.rule_id - 1];
        EXPECT_TRUE(RuleMatches(r, query.proto, query.port, query.addr.family,
                                query.addr.addr))
            << where;
        EXPECT_EQ(r.action == Action::kAllow,
                  fast.verdict == EGRESS_VERDICT_ALLOW)
            << where;
      }
      if (fast.verdict == EGRESS_VERDICT_ALLOW) {
        ++allowed;
      } else if (fast.rule_id != 0) {
        ++denied_by_rule;
      } else {
        ++defaulted;
      }

      // The same port of a name, as names.h probes it for one pattern an
      // address was learned for (tcp and udp only); every third query on
      // a named rule's own port.
      const uint8_t name_proto =
          query.proto == IPPROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;
      uint16_t name_port = query.port;
      std::string name = kNames[q % 4];
      if (const Rule& r = rules[(q * 7) % rules.size()];
          q % 3 == 0 && !r.names.empty() && !r.ports.empty() &&
          (r.ports[0].proto == Proto::kTcp ||
           r.ports[0].proto == Proto::kUdp) &&
          (r.ports[0].proto == Proto::kTcp) == (name_proto == IPPROTO_TCP)) {
        name = r.names[0];
        name_port = r.ports[0].lo;
      }
      const std::array<uint8_t, 16> pattern = NameAddr(name);
      const Decision by_name = Evaluate(forms[q % 3], kRs, name_proto,
                                        name_port, EGRESS_FAMILY_NAME, pattern);
      const Decision name_naive = EvaluateNaive(rules, name_proto, name_port,
                                                EGRESS_FAMILY_NAME, pattern);
      name_exact_hits += ExactHit(forms[q % 3], name_proto, name_port,
                                  EGRESS_FAMILY_NAME, pattern);
      const std::string name_where = "round " + std::to_string(round) +
                                     " proto " + std::to_string(name_proto) +
                                     " port " + std::to_string(name_port) +
                                     " name " + name;
      ASSERT_EQ(by_name.verdict, name_naive.verdict) << name_where;
      ASSERT_EQ(by_name.rule_id == 0, name_naive.rule_id == 0) << name_where;
      if (by_name.rule_id != 0) {
        // The reported rule names the pattern on that port, with the
        // verdict's action.
        const Rule& r = rules[by_name.rule_id - 1];
        EXPECT_EQ(EvaluateNaive({r}, name_proto, name_port, EGRESS_FAMILY_NAME,
                                pattern)
                      .rule_id,
                  r.id)
            << name_where;
        EXPECT_EQ(r.action == Action::kAllow,
                  by_name.verdict == EGRESS_VERDICT_ALLOW)
            << name_where;
      }
      if (by_name.verdict == EGRESS_VERDICT_ALLOW) {
        ++name_allowed;
      } else if (by_name.rule_id != 0) {
        ++name_denied;
      }
    }
  }
  // The generator must exercise every outcome, not just default deny.
  EXPECT_GT(allowed, 1000);
  EXPECT_GT(denied_by_rule, 1000);
  EXPECT_GT(defaulted, 1000);
  EXPECT_GT(exact_entries, 1000u);
  EXPECT_GT(exact_hits, 100);  // queries an exact entry answered
  EXPECT_GT(name_allowed, 500);
  EXPECT_GT(name_denied, 50);
  EXPECT_GT(name_exact_entries, 100u);
  EXPECT_GT(name_exact_hits, 100);
  std::cout << "exact entries " << exact_entries << " (" << exact_hits
            << " queries answered by one; " << name_exact_entries
            << " of names, " << name_exact_hits
            << " name queries answered by one), allowed " << allowed
            << ", denied by a rule " << denied_by_rule << ", default deny "
            << defaulted << "; names: allowed " << name_allowed
            << ", denied by a rule " << name_denied << "\n";
}

}  // namespace
}  // namespace egress::policy
