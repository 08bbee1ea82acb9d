#include "userspace/events/event_query.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

// request[key] as a string ("" when absent).
absl::StatusOr<std::string> StringField(const nlohmann::json& request,
                                        const char* key) {
  auto it = request.find(key);
  if (it == request.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: '", key, "' must be a string"));
  }
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<EventQuery> ParseEventQuery(const nlohmann::json& request) {
  EventQuery q;
  EGRESS_ASSIGN_OR_RETURN(std::string target, StringField(request, "target"));
  EGRESS_ASSIGN_OR_RETURN(std::string verdict, StringField(request, "verdict"));
  EGRESS_ASSIGN_OR_RETURN(std::string format, StringField(request, "format"));
  EGRESS_ASSIGN_OR_RETURN(q.filter, MakeEventFilter(target, verdict));
  EGRESS_ASSIGN_OR_RETURN(q.format, ParseEventFormat(format));
  if (auto it = request.find("follow"); it != request.end()) {
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError("events: 'follow' must be true/false");
    }
    q.follow = it->get<bool>();
  }
  q.last = q.follow ? 0 : 100;
  if (auto it = request.find("last"); it != request.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return absl::InvalidArgumentError("events: 'last' must be a number >= 0");
    }
    q.last = it->get<size_t>();
  }
  return q;
}

}  // namespace egress
