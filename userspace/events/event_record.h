// One drained record as a value: the kernel's fields and what egressd adds.
// Records are kept and passed as this value; every text or JSON form is
// rendered from it (event_render.h), never parsed back.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_RECORD_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_RECORD_H_

#include "egress/abi.h"
#include "userspace/events/event_json.h"

namespace egress {

struct EventRecord {
  egress_event raw{};
  EventContext ctx;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_RECORD_H_
