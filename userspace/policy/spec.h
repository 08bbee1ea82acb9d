// The operator's rule grammar, in the spirit of UFW: the words after
// "egressctl allow" / "egressctl deny", as the shell split them.
//
// Short form:   SPEC [to] [DEST...] [comment TEXT]
//   SPEC is one of
//     NAME[/PROTO]        a service: "smtp", "https", "dns", "ntp/udp"
//                         (see LookupService in services.h)
//     PORTS[/PROTO]       "443", "443/tcp", "1000-2000/udp", "6000:6010",
//                         "80,443,8000-8080/tcp"; no PROTO = tcp and udp
//     tcp | udp           every port of that protocol
//     icmp                ICMP to IPv4 and ICMPv6 to IPv6 destinations
//     raw                 may create raw sockets (takes no DEST)
//     any                 every tcp and udp port, plus icmp
//   PROTO is tcp, udp or any (= tcp and udp).
//   DEST is an IPv4/IPv6 address or network ("10.0.0.5", "10.0.0.0/8",
//   "2001:db8::/32"), "any"/"anywhere", or a dotted domain name, exact
//   ("api.example.com") or wildcard ("*.example.com": any name strictly
//   below example.com). Names are rules (Rule::names, name_rules.h): they
//   are never resolved; the kernel learns their addresses from the target's
//   own DNS answers. Addresses and names mix. A name takes tcp and udp
//   ports ("any" to a name is every tcp and udp port). No DEST = anywhere,
//   but a "to" needs a DEST after it ("443 to" is an error, not anywhere).
//   A word whose last label starts with a digit ("192.0.2.0-255") is no
//   name (domain_name.h): an error, as addresses are written as such.
//   Any other word is an error naming it: "443 tcp" is "'tcp' is not a
//   destination: ... (did you mean 443/tcp?)".
//   UFW's interface clause ("on eth0") is an error saying egress has none.
//   TEXT is exactly one word (one argument: the shell's quotes make a comment
//   of several words) and comes last, as in UFW; no control characters.
//
// Unix form:    [out] unix ADDRESS... [comment TEXT]
//   ADDRESS is a unix socket address in the text form of unix_rules.h: an
//   absolute path ("/var/run/docker.sock") or an abstract name ("@name").
//   The rule has spec "unix", ports {{Proto::kUnix}} and unix_paths.
//
// UFW long form: [out] [proto tcp|udp|any|icmp] [from any] [to DEST]
//                [port PORTS|NAME] [comment TEXT]
//   e.g. "out proto tcp to 10.0.0.5 port 25". Clauses may come in any order,
//   each at most once. No port = every port; no proto = tcp and udp when a
//   port is given, else everything ("any"). "out" followed by a short-form
//   SPEC is also accepted ("out 443/tcp 10.0.0.0/8").
#ifndef EGRESS_USERSPACE_POLICY_SPEC_H_
#define EGRESS_USERSPACE_POLICY_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// Parses a port number: decimal digits only, 1..65535. InvalidArgument naming
// the word: "bad port 'x': not a number", "bad port '0': out of range
// 1-65535".
absl::StatusOr<uint16_t> ParsePort(absl::string_view word);

// Parses a short-form SPEC word (see above) into its port/protocol list:
// tcp entries before udp entries, in the order typed, without duplicates.
// InvalidArgument naming the word, e.g.
//   "bad port range '2000-1000': low end is above high end"
//   "bad protocol 'sctp' in '25/sctp': expected tcp, udp or any"
//   "unknown service 'smpt'; did you mean 'smtp'?"
absl::StatusOr<std::vector<PortProto>> ParseSpec(absl::string_view word);

// Parses one rule (see the top comment). The result has id 0 (the daemon
// assigns ids), `action`, spec, ports, destinations, names (both empty =
// anywhere) and comment filled in. Nothing is looked up.
//
// Errors: InvalidArgument naming the offending word for every grammar error,
// e.g. "raw takes no destination: '10.0.0.1'", or for "in": "egressctl only
// controls outgoing connections; accepted inbound connections are never
// affected".
absl::StatusOr<Rule> ParseRuleWords(Action action,
                                    absl::Span<const std::string> words);

// A rule's comment, wherever it is written (`comment TEXT`, a policy file's
// `comment:`): `list` prints it as it is, so a line break could show a rule
// that is not there and an escape sequence could rewrite the terminal.
// InvalidArgument for a control character: C0 (below 0x20, tab and line
// breaks included), DEL (0x7f) or C1 (U+0080-U+009F, which some terminals
// act on as on ESC sequences):
//   the comment holds a control character (U+001B) at byte 2; a comment is
//   one line of printable text
absl::Status CheckCommentText(absl::string_view text);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_SPEC_H_
