// The `events` control request: what a client asks of the event pipeline.
//   {"cmd":"events","target":"web","verdict":"deny","last":10,
//    "follow":true,"format":"text"}
// is answered with {"ok":true,"lines":[...]}: the backlog, oldest first, as
// lines in the asked format; with "follow" the connection then stays open
// and each further record is one line.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_QUERY_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_QUERY_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_render.h"

namespace egress {

struct EventQuery {
  EventFilter filter;
  EventFormat format = EventFormat::kJson;
  bool follow = false;
  // Backlog size. Like tail -f, a follower gets none unless it asks.
  size_t last = 100;
};

// InvalidArgument naming the field for a bad verdict, format or a field of
// the wrong type. Whether the target exists is for the caller to check.
absl::StatusOr<EventQuery> ParseEventQuery(const nlohmann::json& request);

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_QUERY_H_
