#include "userspace/events/event_filter.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace egress {

absl::StatusOr<uint8_t> ParseVerdictWord(absl::string_view word) {
  const std::string w = absl::AsciiStrToLower(word);
  if (w == "deny" || w == "denied") return EGRESS_VERDICT_DENY;
  if (w == "allow" || w == "allowed") return EGRESS_VERDICT_ALLOW;
  if (w == "audit") return EGRESS_VERDICT_AUDIT;
  if (w == "unexplained") return EGRESS_VERDICT_UNEXPLAINED;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown verdict '", word, "': use deny, audit, allow or unexplained"));
}

bool EventFilter::ContainerMatches(const EventContext::Container& c) const {
  if (container == c.name) return true;
  // Records carry the short id; a longer id names it by its prefix.
  return !c.id.empty() && container.size() >= 4 &&
         (absl::StartsWith(c.id, container) ||
          absl::StartsWith(container, c.id));
}

bool EventFilter::PodMatches(const EventContext::Container& c) const {
  if (c.pod_name.empty()) return false;
  if (absl::EndsWith(pod, "/")) {
    return pod.size() == c.pod_namespace.size() + 1 &&
           absl::StartsWith(pod, c.pod_namespace);
  }
  return pod == absl::StrCat(c.pod_namespace, "/", c.pod_name);
}

absl::StatusOr<EventFilter> MakeEventFilter(std::string target,
                                            absl::string_view verdict) {
  EventFilter filter;
  filter.target = std::move(target);
  if (!verdict.empty()) {
    EGRESS_ASSIGN_OR_RETURN(filter.verdict, ParseVerdictWord(verdict));
  }
  return filter;
}

}  // namespace egress
