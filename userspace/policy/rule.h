// The rule model: what an operator's "egressctl allow|deny ..." line means once
// parsed, independent of how it is typed (spec.h), stored (rule_json.h) or
// enforced (compile.h).
//
// A Rule matches an outgoing connection or datagram when one of its PortProto
// entries matches the protocol and destination port AND one of its
// destinations contains the destination address (no destinations and no
// names = anywhere, IPv4 and IPv6). A name (Rule::names) matches the
// addresses the target learned for it from DNS answers (docs/dns.md); that
// is known in the kernel only, so RuleMatches never matches by name. Across a
// rule set, any matching deny rule wins over every allow rule, regardless of
// specificity; with no match the default is deny.
#ifndef EGRESS_USERSPACE_POLICY_RULE_H_
#define EGRESS_USERSPACE_POLICY_RULE_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

enum class Action { kAllow, kDeny };

// Protocols a rule can name. kIcmp means ICMP towards IPv4 destinations and
// ICMPv6 towards IPv6 destinations. kRaw is "may create SOCK_RAW inet sockets"
// and has no ports or destinations. kUnix is a unix-socket rule: it has no
// ports or destinations; Rule::unix_paths names the socket addresses
// (unix_rules.h).
enum class Proto : uint8_t { kTcp, kUdp, kIcmp, kRaw, kUnix };

// "allow" / "deny".
std::string ActionName(Action action);
// "tcp" / "udp" / "icmp" / "raw" / "unix".
std::string ProtoName(Proto proto);
// Inverse of ProtoName (exact, lower case). InvalidArgument naming the word,
// e.g. "unknown protocol 'sctp'".
absl::StatusOr<Proto> ParseProtoName(absl::string_view name);

// A protocol and an inclusive port range in host byte order. lo = 0 and
// hi = 65535 is "every port" and is what the grammar produces for "any" and
// for a bare "tcp"/"udp"; operator-typed ranges are always within 1..65535.
// kIcmp and kRaw ignore lo/hi (they keep their defaults).
struct PortProto {
  Proto proto = Proto::kTcp;
  uint16_t lo = 0;
  uint16_t hi = 65535;

  // True for tcp/udp with lo == 0 and hi == 65535.
  bool AllPorts() const { return lo == 0 && hi == 65535; }
  bool operator==(const PortProto&) const = default;
};

// An IPv4 or IPv6 network. Invariant (kept by Parse and by every function
// here that builds one): family is 4 or 6, prefix_len <= 32 / 128, every
// address bit past prefix_len is zero, and an IPv4 address occupies addr[0..3]
// with addr[4..15] zero (the layout of egress_rule_key.addr).
struct Cidr {
  uint8_t family = 4;  // 4 or 6 (the values of EGRESS_FAMILY_IPV4/6).
  std::array<uint8_t, 16> addr{};
  uint8_t prefix_len = 0;

  // Parses "10.0.0.5" (a /32), "10.0.0.0/8", "2001:db8::/32", "2001:db8::1"
  // (a /128). An IPv4-mapped IPv6 address ("::ffff:10.0.0.5", or
  // "::ffff:10.0.0.0/104") becomes the IPv4 network (10.0.0.5/32,
  // 10.0.0.0/8); a mapped prefix shorter than /96 stays IPv6.
  // InvalidArgument, naming the input, for:
  //   - a bad address:        "bad address '10.0.0.256'"
  //   - a bad prefix length:  "bad prefix length in '10.0.0.0/33': must be
  //                            0-32"
  //   - host bits set:        "10.0.0.1/8: host bits set; did you mean
  //                            10.0.0.0/8?"
  static absl::StatusOr<Cidr> Parse(absl::string_view text);

  // 0.0.0.0/0 and ::/0.
  static Cidr AnyV4();
  static Cidr AnyV6();

  // Canonical text: "10.0.0.0/8", "2001:db8::/32"; a host (/32 or /128) is
  // printed without the prefix: "10.0.0.5", "2001:db8::1". Parse(ToString())
  // gives back an equal Cidr.
  std::string ToString() const;

  // True if the invariant above holds.
  bool Valid() const;

  // True if every address of `other` is in this network (same family only).
  bool Contains(const Cidr& other) const;
  // True if the 16-byte address `a` (IPv4 in the first 4 bytes) of the given
  // family is in this network.
  bool ContainsAddress(uint8_t addr_family,
                       const std::array<uint8_t, 16>& a) const;

  bool operator==(const Cidr&) const = default;
};

// A rule's ports and destinations. Nearly every rule has one port range (or
// tcp and udp) and one destination, so they are held inside the Rule: a
// 100,000-rule target is 200,000 heap blocks fewer to build, copy and free.
// Two PortProto fit in the room of the heap pointer and capacity (24 bytes in
// all, as std::vector); one Cidr adds 8 bytes to that.
using PortList = absl::InlinedVector<PortProto, 2>;
using CidrList = absl::InlinedVector<Cidr, 1>;

// One operator rule.
struct Rule {
  // Stable id (events, counters). 0 means "not assigned yet" (the parser
  // leaves it 0; the daemon assigns ids); Compile rejects 0.
  uint32_t id = 0;
  Action action = Action::kAllow;
  // The service/port word as typed: "smtp", "443/tcp", "1000-2000/udp",
  // "any", "icmp", "raw". For the UFW long form, a normalized equivalent
  // ("25/tcp", "any").
  std::string spec;
  PortList ports;
  // Empty, with no names = anywhere (IPv4 and IPv6).
  CidrList destinations;
  // Domain names, exact ("api.example.com") or wildcard ("*.example.com"),
  // in the canonical text of dns::DomainPattern, in the order given, without
  // duplicates. Never resolved by egress: the kernel learns their addresses
  // from the target's own DNS answers.
  std::vector<std::string> names;
  // The host name `destinations` were resolved from, if any.
  std::string host;
  std::string comment;
  // The rule's `name:` in the policy file it came from ("" for none, and
  // for rules added by `allow` and `deny`), kept so that `export` writes it
  // back as a name. `comment` holds it too ("NAME: COMMENT", policy_file.h)
  // for `list` and records.
  std::string name;
  // A unix rule (ports == {{Proto::kUnix}}): the socket addresses it
  // matches, in the text form of unix_rules.h ("/run/php/php-fpm.sock",
  // "@name" for an abstract name), in the order given, without duplicates.
  // Empty for every other rule.
  std::vector<std::string> unix_paths;
  // Unix time (seconds) at which egressd removes the rule by itself
  // (`egressctl allow ... --for 30m`); 0 = never.
  int64_t expires = 0;

  // True when the rule names no destination at all: it matches anywhere.
  bool Anywhere() const { return destinations.empty() && names.empty(); }

  // True when the rule has names but no tcp or udp port. Names match the
  // addresses of DNS answers for tcp and udp only, so such a rule would
  // compile to nothing but its icmp flag (ping sockets to every address):
  // the parsers and Compile refuse it.
  bool NamesWithoutTcpOrUdp() const {
    return !names.empty() &&
           std::none_of(ports.begin(), ports.end(), [](const PortProto& pp) {
             return pp.proto == Proto::kTcp || pp.proto == Proto::kUdp;
           });
  }

  bool operator==(const Rule&) const = default;
};

// `addr` with every bit past the first `prefix_len` (0-128) zero: the
// network of that length holding the address.
std::array<uint8_t, 16> MaskedAddress(const std::array<uint8_t, 16>& addr,
                                      int prefix_len);

// True for an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
bool IsV4Mapped(const std::array<uint8_t, 16>& addr);

// True if `rule` matches (ip_proto, port, address); see the top comment.
// `ip_proto` is an IPPROTO_* number; `port` is in host order and ignored for
// ICMP; `family` is 4 or 6. Raw ports never match (raw is a socket-creation
// permission, not a destination).
bool RuleMatches(const Rule& rule, uint8_t ip_proto, uint16_t port,
                 uint8_t family, const std::array<uint8_t, 16>& addr);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_RULE_H_
