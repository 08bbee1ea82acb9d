// egressd's path for every drained kernel record: the record gets its
// context once, becomes a value (EventRecord), is shown to observers
// (learning), rendered for the sinks and the followers (each form at most
// once), and kept among the last records for `egressctl events`.
//
// Not thread-safe: egressd calls it from its single loop (and reads the
// counters under the loop's lock).
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_PIPELINE_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_PIPELINE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "userspace/common/unique_fd.h"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_followers.h"
#include "userspace/events/event_line.h"
#include "userspace/events/event_record.h"
#include "userspace/events/event_render.h"
#include "userspace/events/event_sink.h"

namespace egress {

struct EventPipelineOptions {
  // What egressd knows beyond the kernel's fields (target name, rule
  // number, cgroup path, node name, clock offset). Unset: an empty context.
  std::function<EventContext(const egress_event&)> resolve_context;
  // Where every record goes as it is drained (stdout, file, syslog); may be
  // null.
  std::shared_ptr<EventSink> sink;
  // Called with every record before it is rendered (e.g. learning).
  std::vector<std::function<void(const EventRecord&)>> observers;
  // Records kept for `egressctl events` (all targets together).
  size_t recent_records = 4096;
  EventFollowers::Limits followers;
};

class EventPipeline {
 public:
  explicit EventPipeline(EventPipelineOptions options);

  // Where a record comes from: the kernel's ring buffer, or egressd itself
  // (`existing`, `cut`, `self_check_failed`), which no decision counter
  // counts.
  enum class Origin { kRing, kEgressd };
  // One record through every stage.
  void OnRecord(const egress_event& e, Origin origin = Origin::kRing);

  // Whether one more follower is welcome (ResourceExhausted if not): checked
  // before the client is answered, so that a refusal is its answer.
  absl::Status CanFollow() const { return followers_.CanAdd(); }
  // From now on, sends the records `filter` matches to the connected stream
  // socket `fd`, as lines in `format`. Errors as EventFollowers::Add.
  absl::Status Follow(UniqueFd fd, EventFilter filter, EventFormat format);

  // A follower with a backlog (`events --follow --last N`), in two steps
  // because the backlog is sent before the stream starts: StartFollow takes
  // the last `last` records `filter` matches and, in the same step, a
  // follower (EventFollowers::Reserve) that keeps the records that come
  // after them until AttachFollower gives it its socket. Every record is
  // then in the backlog or in the stream, once.
  struct FollowStart {
    std::vector<std::string> backlog;  // lines, oldest first, in `format`
    uint64_t follower = 0;             // for AttachFollower
  };
  absl::StatusOr<FollowStart> StartFollow(const EventFilter& filter,
                                          size_t last, EventFormat format);
  // Errors as EventFollowers::Attach; an invalid fd removes the follower.
  absl::Status AttachFollower(uint64_t follower, UniqueFd fd) {
    return followers_.Attach(follower, std::move(fd));
  }
  // Writes to followers without blocking; drops the ones that went away.
  void Flush() { followers_.Flush(); }
  // Flush, waiting until `deadline` for followers that read to make room
  // for the next batch of records (EventFollowers::FlushWaiting).
  void FlushWaiting(absl::Time deadline) { followers_.FlushWaiting(deadline); }

  // The last `last` kept records that `filter` matches, oldest first.
  std::vector<EventRecord> Recent(const EventFilter& filter, size_t last) const;
  // The same records rendered as lines (no newlines) in `format`.
  std::vector<std::string> RecentLines(const EventFilter& filter, size_t last,
                                       EventFormat format);
  // Whether a kept record carries target name `target`: records keep the
  // name they were drained with, so a removed target's are still there.
  bool KeepsRecordsOf(const std::string& target) const;

  // Records of the ring buffer passed to OnRecord, but held-back
  // summaries: with the kernel's events_suppressed and events_lost, the
  // decisions. Not egressd's own records.
  uint64_t records_read() const { return records_read_; }
  // Records a follower could not take (its buffer was full).
  uint64_t records_dropped() const { return followers_.dropped(); }
  // Records the sink failed to deliver (0 without a sink).
  uint64_t sink_errors() const;
  size_t followers() const { return followers_.size(); }

 private:
  EventPipelineOptions options_;
  EventFollowers followers_;
  EventLineWriter writer_;
  std::deque<EventRecord> recent_;
  uint64_t records_read_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_PIPELINE_H_
