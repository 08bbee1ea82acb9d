// Runs the held-back record sweep (bpf/limits_sweep.bpf.c) against the
// pinned maps: records the rate limit held back, for destinations no later
// record reported, come out as one summary record each
// (EGRESS_EVENT_HELD_BACK) in the events ring buffer, once their window has
// passed. egressd calls Sweep() on a timer (about every 0.5 s).
#ifndef EGRESS_USERSPACE_KERNEL_LIMIT_SWEEPER_H_
#define EGRESS_USERSPACE_KERNEL_LIMIT_SWEEPER_H_

#include <utility>

#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "limits_sweep.skel.h"

namespace egress {

class LimitSweeper {
 public:
  // Loads the sweep program against the maps pinned in `maps_dir` (they
  // must exist: SharedMaps::OpenOrCreate made them); errno status of the
  // open or the load.
  static absl::StatusOr<LimitSweeper> Load(const char* maps_dir);
  LimitSweeper(LimitSweeper&& other) noexcept : skel_(other.skel_) {
    other.skel_ = nullptr;
  }
  LimitSweeper& operator=(LimitSweeper&& other) noexcept {
    std::swap(skel_, other.skel_);  // ours goes with `other`
    return *this;
  }
  ~LimitSweeper() { limits_sweep__destroy(skel_); }

  // One pass over every slot. The args as the program left them (records
  // submitted, decisions reported, slots that raced, ring full). Errno
  // status of BPF_PROG_TEST_RUN.
  absl::StatusOr<egress_sweep_args> Sweep();

 private:
  explicit LimitSweeper(limits_sweep* skel) : skel_(skel) {}
  limits_sweep* skel_;  // owned
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_LIMIT_SWEEPER_H_
