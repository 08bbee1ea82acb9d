// A record's two rendered forms, JSON line and text, each made in one place
// and, per record, at most once: the sinks and every follower that wants a
// form share one rendering.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_RENDER_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_RENDER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/events/event_line.h"
#include "userspace/events/event_record.h"

namespace egress {

// How `egressctl events` wants records: JSON lines or their text form.
enum class EventFormat { kJson, kText };

// "json" or "text"; "" is json (what clients that do not ask get).
// InvalidArgument naming the choices otherwise.
absl::StatusOr<EventFormat> ParseEventFormat(absl::string_view word);

// Appends the record's JSON line (docs/events.md; no newline) to *out: the
// fixed-schema writer when it covers the record, else the nlohmann tree.
// Either way the bytes are the same.
void RenderJsonLine(const EventRecord& record, EventLineWriter& writer,
                    std::string* out);

// The record in `format`, without a newline.
std::string RenderLine(const EventRecord& record, EventFormat format,
                       EventLineWriter& writer);

// One record and its forms, rendered on first use. The record (and the
// writer) must outlive this object: it is made, used and dropped while one
// record is handed out.
class RenderedEvent {
 public:
  RenderedEvent(const EventRecord& record, EventLineWriter& writer)
      : record_(record), writer_(&writer) {}
  // Forms the caller already has (tests of sinks, replays).
  RenderedEvent(const EventRecord& record, std::string json, std::string text)
      : record_(record), json_(std::move(json)), text_(std::move(text)) {}
  RenderedEvent(const RenderedEvent&) = delete;
  RenderedEvent& operator=(const RenderedEvent&) = delete;

  const EventRecord& record() const { return record_; }
  const std::string& Json();
  const std::string& Text();
  const std::string& Line(EventFormat format) {
    return format == EventFormat::kText ? Text() : Json();
  }

 private:
  const EventRecord& record_;
  EventLineWriter* writer_ = nullptr;
  std::optional<std::string> json_;
  std::optional<std::string> text_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_RENDER_H_
