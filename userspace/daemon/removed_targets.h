// The names of targets removed a moment ago, by target id. Records are read
// from the ring buffer every 50 ms, after the hooks wrote them: those a
// target wrote just before its removal are read after it, and would say no
// target. Kept for a short grace period after each removal and for at most
// kMaxKept removals (the oldest go first), so memory is bounded however
// many targets come and go. Pure: the caller gives the time and guards it.
#ifndef EGRESS_USERSPACE_DAEMON_REMOVED_TARGETS_H_
#define EGRESS_USERSPACE_DAEMON_REMOVED_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/time/time.h"

namespace egress {

class RemovedTargets {
 public:
  // Far longer than a drain takes even when egressd is busy (records of
  // the removed target are in the ring buffer before its removal returns).
  static constexpr absl::Duration kGrace = absl::Seconds(10);
  static constexpr size_t kMaxKept = 1024;

  // Target `id` named `name` was removed at `now`.
  void Remember(uint32_t id, std::string name, absl::Time now);
  // The name of target `id` if it was removed within kGrace before `now`
  // (the latest removal of that id), else "".
  std::string NameOf(uint32_t id, absl::Time now) const;
  size_t size() const { return removed_.size(); }

 private:
  struct Removed {
    uint32_t id = 0;
    std::string name;
    absl::Time at;
  };
  std::deque<Removed> removed_;  // oldest first
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_REMOVED_TARGETS_H_
