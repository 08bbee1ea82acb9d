// Waiting in tests for what egressd or the kernel do asynchronously: ask
// again and again, bounded in time, never a fixed sleep that hopes.
#ifndef EGRESS_TESTS_TESTING_POLL_H_
#define EGRESS_TESTS_TESTING_POLL_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace egress::testing {

// Asks `done` every `interval` until it says yes (true) or `timeout` has
// passed (false).
inline bool PollUntil(const std::function<bool()>& done,
                      absl::Duration timeout = absl::Seconds(10),
                      absl::Duration interval = absl::Milliseconds(50)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
  }
  return true;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_POLL_H_
