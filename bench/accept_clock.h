// A TCP listener on 127.0.0.1 that notes when it accepts each connection
// (CLOCK_MONOTONIC, in ns) and closes it at once: the far end of a
// benchmark's "time until the first connection got through". One background
// thread, stopped by the destructor.
#ifndef EGRESS_BENCH_ACCEPT_CLOCK_H_
#define EGRESS_BENCH_ACCEPT_CLOCK_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {

class AcceptClock {
 public:
  static absl::StatusOr<std::unique_ptr<AcceptClock>> Create();
  ~AcceptClock();
  AcceptClock(const AcceptClock&) = delete;
  AcceptClock& operator=(const AcceptClock&) = delete;

  uint16_t port() const { return port_; }
  // Connections accepted so far.
  int accepted() const;
  // The first accept at or after `since_ns` (CLOCK_MONOTONIC), waiting up
  // to `timeout` for it; nullopt when none came.
  std::optional<int64_t> FirstAcceptSince(int64_t since_ns,
                                          absl::Duration timeout) const;

 private:
  AcceptClock(UniqueFd fd, UniqueFd stop, uint16_t port);
  void Loop();

  UniqueFd fd_;
  UniqueFd stop_;  // eventfd written by the destructor
  uint16_t port_;
  mutable std::mutex mu_;
  std::vector<int64_t> accepts_ns_;  // guarded by mu_, in order
  std::thread thread_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_ACCEPT_CLOCK_H_
