// `egressctl events --follow` clients: each gets the records its filter
// matches, in the format it asked for, one per line, through a bounded buffer
// that is written without ever blocking the caller's loop.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_FOLLOWERS_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_FOLLOWERS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_render.h"

namespace egress {

class EventFollowers {
 public:
  struct Limits {
    // With 1 MiB each, followers cost at most 64 MiB.
    size_t max_followers = 64;
    size_t buffer_bytes = 1 << 20;
  };

  explicit EventFollowers(Limits limits) : limits_(limits) {}

  // ResourceExhausted when `max_followers` clients follow already.
  absl::Status CanAdd() const;
  // Adds a connected stream socket, made non-blocking here. Errors as
  // CanAdd, and InvalidArgument for an invalid fd.
  absl::Status Add(UniqueFd fd, EventFilter filter, EventFormat format);
  // Adds a follower whose socket comes later (Attach): it takes records
  // into its buffer from now on. For a client that is still being sent its
  // backlog: what is offered meanwhile is neither lost nor sent twice.
  // Returns its id; errors as CanAdd.
  absl::StatusOr<uint64_t> Reserve(EventFilter filter, EventFormat format);
  // Gives reserved follower `id` its socket, made non-blocking here; an
  // invalid fd (the client went away before its backlog was out) removes
  // it. NotFound for an unknown id; an errno status (the follower removed)
  // when the socket cannot be made non-blocking.
  absl::Status Attach(uint64_t id, UniqueFd fd);
  // Queues the record for every follower it matches. A follower whose
  // buffer cannot take the line loses the record (counted in dropped()):
  // a slow reader costs records, never memory. Its stream then says so: a
  // line (DroppedNotice) goes before the next record that fits.
  void Offer(RenderedEvent& event);
  // Writes what each socket takes now; removes clients that hung up or
  // failed.
  void Flush();
  // Flush, then waits until `deadline` for the followers that are reading
  // to take what they have pending down to half their buffer, so that the
  // next batch of records fits. A follower that takes nothing within the
  // wait is not waited for again until it reads: one stalled client does
  // not slow the caller's loop every turn.
  void FlushWaiting(absl::Time deadline);

  // The line a follower gets in place of `count` records it lost.
  static std::string DroppedNotice(uint64_t count, EventFormat format);

  size_t size() const { return followers_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Follower {
    uint64_t id = 0;
    UniqueFd fd;  // invalid while reserved (not attached yet)
    EventFilter filter;
    EventFormat format;
    std::string pending;            // bytes not written yet (<= buffer_bytes)
    uint64_t unreported_drops = 0;  // records lost since the last notice
    bool stalled = false;  // took nothing within FlushWaiting's last wait
    bool gone = false;     // hung up or failed: removed by Flush
  };
  // Appends `line` (when not null) and a newline to f's pending bytes,
  // after the notice of earlier losses, if f's pending bytes then stay
  // within `limit`; false, with nothing appended, if not. Records and the
  // notice Flush sends alone go through here, so the notice is always
  // worded, ended and counted as told the same way.
  bool Append(Follower& f, const std::string* line, size_t limit);
  // Writes f's pending bytes; false when the client is gone or failed.
  static bool Drain(Follower& f);

  Limits limits_;
  std::vector<Follower> followers_;
  uint64_t next_id_ = 1;
  uint64_t dropped_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_FOLLOWERS_H_
