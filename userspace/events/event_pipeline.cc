#include "userspace/events/event_pipeline.h"

#include <algorithm>
#include <utility>

namespace egress {

EventPipeline::EventPipeline(EventPipelineOptions options)
    : options_(std::move(options)), followers_(options_.followers) {}

void EventPipeline::OnRecord(const egress_event& e, Origin origin) {
  // A held-back summary is no decision of its own: its count is in
  // events_suppressed already, so records read + suppressed + lost stays
  // the number of decisions. Nor is a record egressd made.
  if (origin == Origin::kRing && e.kind != EGRESS_EVENT_HELD_BACK) {
    ++records_read_;
  }
  EventRecord record;
  record.raw = e;
  if (options_.resolve_context) record.ctx = options_.resolve_context(e);
  for (const auto& observe : options_.observers) observe(record);
  {
    // Sinks and followers share the renderings of this record.
    RenderedEvent rendered(record, writer_);
    if (options_.sink != nullptr) options_.sink->Write(rendered);
    followers_.Offer(rendered);
  }
  if (options_.recent_records == 0) return;
  if (recent_.size() >= options_.recent_records) recent_.pop_front();
  recent_.push_back(std::move(record));
}

absl::Status EventPipeline::Follow(UniqueFd fd, EventFilter filter,
                                   EventFormat format) {
  return followers_.Add(std::move(fd), std::move(filter), format);
}

absl::StatusOr<EventPipeline::FollowStart> EventPipeline::StartFollow(
    const EventFilter& filter, size_t last, EventFormat format) {
  absl::StatusOr<uint64_t> follower = followers_.Reserve(filter, format);
  if (!follower.ok()) return follower.status();
  return FollowStart{RecentLines(filter, last, format), *follower};
}

std::vector<EventRecord> EventPipeline::Recent(const EventFilter& filter,
                                               size_t last) const {
  std::vector<EventRecord> out;
  for (auto it = recent_.rbegin(); it != recent_.rend() && out.size() < last;
       ++it) {
    if (filter.Matches(*it)) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> EventPipeline::RecentLines(const EventFilter& filter,
                                                    size_t last,
                                                    EventFormat format) {
  std::vector<std::string> lines;
  for (const EventRecord& r : Recent(filter, last)) {
    lines.push_back(RenderLine(r, format, writer_));
  }
  return lines;
}

bool EventPipeline::KeepsRecordsOf(const std::string& target) const {
  return std::any_of(
      recent_.begin(), recent_.end(),
      [&target](const EventRecord& r) { return r.ctx.target == target; });
}

uint64_t EventPipeline::sink_errors() const {
  return options_.sink != nullptr ? options_.sink->errors() : 0;
}

}  // namespace egress
