#include "bench/accept_clock.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "userspace/common/errno_status.h"

namespace egress::bench {

absl::StatusOr<std::unique_ptr<AcceptClock>> AcceptClock::Create() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_in a = Loopback(0);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return ErrnoStatus(errno, "bind 127.0.0.1:0");
  }
  if (listen(fd.get(), 128) != 0) return ErrnoStatus(errno, "listen");
  socklen_t len = sizeof(a);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  UniqueFd stop(eventfd(0, EFD_CLOEXEC));
  if (!stop) return ErrnoStatus(errno, "eventfd");
  return std::unique_ptr<AcceptClock>(
      new AcceptClock(std::move(fd), std::move(stop), ntohs(a.sin_port)));
}

AcceptClock::AcceptClock(UniqueFd fd, UniqueFd stop, uint16_t port)
    : fd_(std::move(fd)), stop_(std::move(stop)), port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

AcceptClock::~AcceptClock() {
  uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  thread_.join();
}

void AcceptClock::Loop() {
  for (;;) {
    pollfd p[2] = {{fd_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (poll(p, 2, 1000) < 0 && errno != EINTR) return;
    if (p[1].revents != 0) return;
    if (p[0].revents == 0) continue;
    // Bounded: at most the backlog per wakeup.
    for (int i = 0; i < 128; ++i) {
      UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) break;
      const int64_t now = ClockNs(CLOCK_MONOTONIC);
      std::lock_guard<std::mutex> lock(mu_);
      accepts_ns_.push_back(now);
    }
  }
}

int AcceptClock::accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(accepts_ns_.size());
}

std::optional<int64_t> AcceptClock::FirstAcceptSince(
    int64_t since_ns, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int64_t t : accepts_ns_) {
        if (t >= since_ns) return t;
      }
    }
    absl::SleepFor(absl::Milliseconds(2));
  } while (absl::Now() < deadline);
  return std::nullopt;
}

}  // namespace egress::bench
