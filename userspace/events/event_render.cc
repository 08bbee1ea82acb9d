#include "userspace/events/event_render.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "userspace/events/event_text.h"

namespace egress {

absl::StatusOr<EventFormat> ParseEventFormat(absl::string_view word) {
  if (word.empty() || word == "json") return EventFormat::kJson;
  if (word == "text") return EventFormat::kText;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown events format '", word, "': use json or text"));
}

void RenderJsonLine(const EventRecord& record, EventLineWriter& writer,
                    std::string* out) {
  // The fixed-schema writer covers nearly every record; the tree is the
  // fallback (flows, refused socket options, non-ASCII names).
  if (writer.Append(record.raw, record.ctx, out)) return;
  out->append(
      EventToJson(record.raw, record.ctx)
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string RenderLine(const EventRecord& record, EventFormat format,
                       EventLineWriter& writer) {
  if (format == EventFormat::kText) return RenderText(record);
  std::string line;
  RenderJsonLine(record, writer, &line);
  return line;
}

const std::string& RenderedEvent::Json() {
  if (!json_.has_value()) {
    json_.emplace();
    if (writer_ != nullptr) {
      RenderJsonLine(record_, *writer_, &*json_);
    } else {
      EventLineWriter writer;
      RenderJsonLine(record_, writer, &*json_);
    }
  }
  return *json_;
}

const std::string& RenderedEvent::Text() {
  if (!text_.has_value()) text_ = RenderText(record_);
  return *text_;
}

}  // namespace egress
