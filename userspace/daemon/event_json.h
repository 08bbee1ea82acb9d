// Turns a kernel verdict record into the JSON line egressd writes (the schema
// of docs/events.md). Pure: no I/O.
#ifndef EGRESS_USERSPACE_DAEMON_EVENT_JSON_H_
#define EGRESS_USERSPACE_DAEMON_EVENT_JSON_H_

#include <string>

#include "egress/abi.h"
#include "nlohmann/json.hpp"

namespace egress {

std::string HookName(uint8_t hook);
std::string VerdictName(uint8_t verdict);  // ALLOWED / DENIED / AUDIT
std::string ReasonName(uint8_t reason);    // NO_MATCHING_RULE, ...
std::string ProtoLabel(uint8_t ip_proto);  // tcp / udp / icmp / 17 ...
// The destination address of a record as text ("10.0.0.5", "2001:db8::1").
std::string EventAddress(const egress_event& e);

// `target` is the target's name ("" when unknown).
nlohmann::json EventToJson(const egress_event& e, const std::string& target);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_EVENT_JSON_H_
