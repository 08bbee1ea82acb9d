// Suggesting a policy from what a target was seen doing in audit/learn mode:
// the least-privilege policy file that allows exactly the observed
// (destination, protocol, port) combinations and denies the rest.
#ifndef EGRESS_USERSPACE_POLICY_SUGGEST_H_
#define EGRESS_USERSPACE_POLICY_SUGGEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "userspace/policy/policy_file.h"

namespace egress::policy {

// One kind of outbound attempt seen in audit/learn mode.
struct Observation {
  uint8_t family = 4;              // 4 or 6
  std::array<uint8_t, 16> addr{};  // IPv4 in addr[0..3], rest 0
  // IPPROTO_TCP / IPPROTO_UDP / IPPROTO_ICMP (IPv4) / IPPROTO_ICMPV6 (IPv6).
  uint8_t ip_proto = 6;
  uint16_t port = 0;  // host order; 0 for ICMP
  uint64_t count = 0;
  int64_t first_seen_ns = 0;  // unix time, ns
  int64_t last_seen_ns = 0;
  std::vector<std::string> processes;  // comm names, sorted, unique
  // Non-empty for a unix socket address (the text form of unix_rules.h):
  // then family, addr, ip_proto and port are not used.
  std::string unix_path;
  // The DNS name the address was bound to by the target's own query (audit
  // learning, docs/dns.md) when it was reached, or "" when it was reached
  // without a live binding.
  // Several names that resolved to the same address are joined by ','
  // (the connect may have meant any): each is allowed.
  std::string name;
  // True for raw inet sockets the target created (a sock_create record of
  // a SOCK_RAW socket): `family` and `ip_proto` are the socket's (ip_proto
  // as given to socket(2), 255 for IPPROTO_RAW and above); addr, port and
  // name are not used.
  bool raw = false;
};

struct SuggestOptions {
  std::string name;  // metadata.name of the policy (1-64 of [A-Za-z0-9-_.@])
  PolicyTarget target;
  // Group IPv4 destinations into /N networks (1..32); 32 = no grouping.
  int group_v4 = 32;
  // The same for IPv6 (1..128); 128 = no grouping.
  int group_v6 = 128;
  // Allow resolved destinations by "*.PARENT" where names share a parent
  // (suggest_names.h, NamePatterns); false = exact names.
  bool group_names = false;
  // Extra lines for the top comment (e.g. "learned since ...").
  std::vector<std::string> header_comment;
};

// A least-privilege policy file (enforce mode, logging denied) allowing
// exactly the observed (destination, protocol, port) combinations, grouped
// into networks only as asked. The text is deterministic: the same
// observations (in any order) and options give the same bytes.
//
// Layout:
//   - a header comment: generated from observations, for which target, what
//     it covers (attempts, time span), that everything else is denied, and
//     how to apply it (`egressctl apply -f FILE`);
//   - one allow rule per protocol and port, tcp rules by port, then udp,
//     then one ICMP rule (ICMP and ICMPv6) if any was seen. `to:` lists the
//     destinations (hosts, or /N networks when grouping) sorted, IPv4 first.
//     Loopback destinations are kept: a local resolver or proxy is a real
//     dependency.
//   - ports: a well-known service name when it maps exactly (25/tcp:
//     `port: smtp`; 53/udp: `port: domain` with `protocol: UDP`; 443/tcp:
//     `port: https` with `protocol: TCP`, so 443/udp stays closed), else
//     the number with its protocol. Service names are those of
//     KnownServiceNames() (services.h) whose LookupService expansion on this
//     host has that port, preferring the canonical /etc/services name
//     ("domain", "postgresql") in `port:`.
//   - rule names, unique in the file: the service's short name ("smtp",
//     "postgres", "dns-udp" and "dns-tcp" for a service with both
//     protocols), else "tcp-8080" / "udp-5353", and "icmp".
//   - above each rule, a comment per destination with its attempt count,
//     process names and first/last seen times (RFC 3339, UTC).
//   - destinations reached by a DNS name (Observation::name, TCP/UDP) are
//     allowed by that name: the rule of their (protocol, port) gets one
//     `domainNames` peer listing the names (NamePatterns of suggest_names.h:
//     exact, or *.PARENT with group_names), beside the `ipBlock` peers of
//     the destinations reached without a lookup. The same address,
//     protocol and port also seen without a name (a literal, an address
//     kept past its answer's binding: the learner names a destination only
//     while a binding would be live) keeps its address rule too: enforced,
//     that connect has no binding to pass by. Each name's comment line
//     gives how many addresses it resolved to. The resolvers themselves
//     (53/udp, 53/tcp) are always addresses, never names, even when the
//     target looked a resolver's address up, so the suggested DNS rule
//     allows exactly them.
//   - unix observations: one allow rule named "unix" listing every address
//     seen, sorted (an allow-list: other unix addresses are refused), with
//     a comment per address as above. None seen: no unix rule, so unix
//     sockets stay unrestricted.
//   - raw observations: one allow rule `raw: true` named "raw", last, with a
//     comment saying that raw packets are not checked per destination
//     (docs/bypasses.md) and a line per (family, protocol) seen. None seen:
//     no raw rule, so raw sockets stay refused.
//   - no observations: a valid policy with `egress: []` (everything denied)
//     and a comment saying nothing was observed.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as IPv4.
//
// Errors: InvalidArgument for group_v4 outside 1..32 or group_v6 outside
// 1..128; for a malformed observation, naming its index and the problem
// (family not 4 or 6; an IPv4 address with bytes past addr[3]; ip_proto not
// TCP, UDP, ICMP for IPv4 or ICMPv6 for IPv6; port 0 for TCP/UDP; a port for
// ICMP; first_seen_ns after last_seen_ns); and for a name or target that
// ParsePolicy refuses (the message is the parser's); for a unix
// observation, an address UnixAddressBytes refuses; for a raw observation,
// a family not 4 or 6.
absl::StatusOr<std::string> SuggestPolicy(
    absl::Span<const Observation> observed, const SuggestOptions& options);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_SUGGEST_H_
