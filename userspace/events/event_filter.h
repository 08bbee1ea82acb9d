// Which records an `egressctl events` client wants: by target and verdict.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_FILTER_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_FILTER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/events/event_record.h"

namespace egress {

// The one parser of verdict words, any case: deny/denied -> DENIED,
// allow/allowed -> ALLOWED, audit -> AUDIT, unexplained -> UNEXPLAINED
// (EGRESS_VERDICT_* values). InvalidArgument naming the choices otherwise.
absl::StatusOr<uint8_t> ParseVerdictWord(absl::string_view word);

struct EventFilter {
  std::string target;              // "" = every target
  std::optional<uint8_t> verdict;  // EGRESS_VERDICT_*; none = every verdict
  // "" = every record; else the records of the container of that name or
  // short id (or a prefix of the id of at least 4 digits).
  std::string container;
  // "" = every record; else "NAMESPACE/NAME" for one pod's records, or
  // "NAMESPACE/" for those of every pod of the namespace.
  std::string pod;

  bool Matches(const EventRecord& record) const {
    return (target.empty() || record.ctx.target == target) &&
           (!verdict.has_value() || record.raw.verdict == *verdict) &&
           (container.empty() || ContainerMatches(record.ctx.container)) &&
           (pod.empty() || PodMatches(record.ctx.container));
  }
  bool ContainerMatches(const EventContext::Container& c) const;
  bool PodMatches(const EventContext::Container& c) const;
};

// A filter from request words: `verdict` "" means every verdict. Errors as
// ParseVerdictWord.
absl::StatusOr<EventFilter> MakeEventFilter(std::string target,
                                            absl::string_view verdict);

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_FILTER_H_
