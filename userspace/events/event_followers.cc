#include "userspace/events/event_followers.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress {

absl::Status EventFollowers::CanAdd() const {
  if (followers_.size() < limits_.max_followers) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "at most ", limits_.max_followers, " 'events --follow' clients at once"));
}

absl::Status EventFollowers::Add(UniqueFd fd, EventFilter filter,
                                 EventFormat format) {
  if (absl::Status st = CanAdd(); !st.ok()) return st;
  if (!fd.valid()) {
    return absl::InvalidArgumentError("events follower: invalid socket");
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(errno, "fcntl O_NONBLOCK", "events follower");
  }
  followers_.push_back(
      Follower{std::move(fd), std::move(filter), format, std::string()});
  return absl::OkStatus();
}

void EventFollowers::Offer(RenderedEvent& event) {
  for (Follower& f : followers_) {
    if (!f.filter.Matches(event.record())) continue;
    const std::string& line = event.Line(f.format);
    if (f.pending.size() + line.size() + 1 > limits_.buffer_bytes) {
      ++dropped_;
      continue;
    }
    f.pending.append(line);
    f.pending.push_back('\n');
  }
}

bool EventFollowers::Drain(Follower& f) {
  // A client that hung up is seen even when nothing is pending for it.
  char probe;
  const ssize_t peek = recv(f.fd.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    return false;
  }
  while (!f.pending.empty()) {
    const ssize_t n = send(f.fd.get(), f.pending.data(), f.pending.size(),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      f.pending.erase(0, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

void EventFollowers::Flush() {
  for (Follower& f : followers_) {
    if (!Drain(f)) f.fd.reset();
  }
  followers_.erase(
      std::remove_if(followers_.begin(), followers_.end(),
                     [](const Follower& f) { return !f.fd.valid(); }),
      followers_.end());
}

}  // namespace egress
