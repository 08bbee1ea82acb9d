// Turns a kernel verdict record into the JSON line egressd writes (the schema
// of docs/events.md). Pure: no I/O.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_JSON_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_JSON_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "egress/abi.h"
#include "nlohmann/json.hpp"

namespace egress {

// Literals for known values, "" for unknown ones (no allocation).
absl::string_view HookLiteral(uint8_t hook);
absl::string_view VerdictLiteral(uint8_t verdict);
absl::string_view ReasonLiteral(uint8_t reason);
absl::string_view ProtoLiteral(uint8_t ip_proto);
// The record's "event": connect, sendmsg, socket, setsockopt, packet,
// established, closed, existing, cut, other.
absl::string_view EventLiteral(const egress_event& e);
// A record egressd made of a connection that existed before the policy
// (EGRESS_EVENT_EXISTING or EGRESS_EVENT_CUT).
bool IsExistingKind(const egress_event& e);

// The same, never empty: unknown values read "hook_9", "VERDICT_7", ...
std::string HookName(uint8_t hook);
std::string VerdictName(uint8_t verdict);  // ALLOWED / DENIED / AUDIT
std::string ReasonName(uint8_t reason);    // NO_MATCHING_RULE, ...
std::string ProtoLabel(uint8_t ip_proto);  // tcp / udp / icmp / 17 ...
// The destination address of a record as text ("10.0.0.5", "2001:db8::1").
std::string EventAddress(const egress_event& e);

// The address of a unix record (family EGRESS_FAMILY_UNIX) as text: a NUL
// byte (the lead of an abstract name, or any other) is '@', as ss(8) shows
// them; control and non-ASCII bytes are '?', so that a record stays one
// line of valid UTF-8.
std::string UnixPathText(const egress_event& e);
// The socket type of a unix record: "stream", "dgram", "seqpacket", or
// "type_N".
std::string UnixSockType(uint8_t sock_type);

// What a refused setsockopt record refused: "source_route" (IP_OPTIONS with
// LSRR/SSRR, IPV6_RTHDR, ...) or "nonlocal_source" (IP_FREEBIND,
// IPV6_FREEBIND, IP_TRANSPARENT, IPV6_TRANSPARENT on a datagram socket).
std::string SocketOptionLabel(const egress_event& e);

// What egressd knows about a record beyond the kernel's fields.
struct EventContext {
  std::string target;              // target name ("" when unknown)
  std::string cgroup_path;         // of cgroup_id, relative to the cgroup2 root
  int64_t realtime_offset_ns = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC
  std::string node_name;           // host name
  size_t rule_number = 0;  // list number of rule_id in its target (0: none)
  // The target was removed just before the record was read: `target` is
  // the name it had, and nothing is learned from the record.
  bool target_removed = false;
  // A destination a name rule decided: that rule's names (the address was
  // learned from a DNS answer for one of them).
  std::vector<std::string> destination_names;
  // A TCP/UDP refusal by default (or its audit) on a port the target has
  // name allow rules for: their names, none of which the address was learned
  // for (a hard-coded or cached address, or an expired answer).
  std::vector<std::string> unlearned_names;
  // The container the record's cgroup belongs to, for a target that selects
  // containers (all "" otherwise): its name, short id and image.
  struct Container {
    std::string name, id, image;
    // The pod it runs in (from CRI's labels); empty outside Kubernetes.
    std::string pod_namespace, pod_name;
    // Its labels (a pod's: the pod's) that the record's target selects by.
    std::map<std::string, std::string> labels;
    bool operator==(const Container&) const = default;
  } container;
};

// The egressctl command that would allow what a DENIED or AUDIT record
// reports, e.g. "egressctl allow 25/tcp 10.0.0.5 --target web"; "" when no
// rule can allow it (source routes) or the record is not a refusal. For a
// refusal by an explicit deny rule, the hint deletes that rule (its number in
// `egressctl list` is `deny_rule_number`; 0 = unknown, no hint).
std::string AllowHint(const egress_event& e, const std::string& target,
                      size_t deny_rule_number);

// The hint of a refusal whose address was never learned for the names
// (ctx.unlearned_names) that would allow its port: what happened and how to
// allow the address itself; "" when ctx.unlearned_names is empty.
std::string UnlearnedNameHint(const egress_event& e, const EventContext& ctx);

// RFC 3339 UTC with nanoseconds: "2026-11-24T17:51:43.371344123Z".
std::string FormatTime(int64_t unix_ns);

// The record's wall-clock time in Unix ns: the kernel's monotonic ts_ns plus
// CLOCK_REALTIME - CLOCK_MONOTONIC. Clamped to the int64 range, so that a
// bad ts_ns (or offset) gives the earliest or latest time, never a signed
// overflow (a time far in the past).
int64_t RecordUnixNs(const egress_event& e, int64_t realtime_offset_ns);

// Any process can set its comm to arbitrary bytes (prctl), and cgroup names
// are bytes too: bytes that are not printable ASCII become '?', so that
// every record is valid UTF-8, serialising it can never fail, and no name
// can start a new line in the text form (a forged record in syslog).
std::string AsciiOnly(absl::string_view in);
// The record's comm (up to its NUL), AsciiOnly.
std::string CommText(const egress_event& e);

// The record as one JSON object (schema in docs/events.md). Its "message" is
// RenderText() of the record (event_text.h).
nlohmann::json EventToJson(const egress_event& e, const EventContext& ctx);

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_JSON_H_
