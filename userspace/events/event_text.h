// The one-line text form of a record: what `egressctl events` prints, the
// JSON record's "message" and the syslog text. E.g.
// "Nov 24 17:51:43.371 web python3[21873] -> 203.0.113.9:4444/tcp DENIED
// (no matching rule) +3 suppressed". Pure: no I/O.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_TEXT_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_TEXT_H_

#include <string>

#include "userspace/events/event_record.h"

namespace egress {

std::string RenderText(const EventRecord& record);

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_TEXT_H_
