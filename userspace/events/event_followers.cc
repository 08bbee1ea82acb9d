#include "userspace/events/event_followers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
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
  absl::StatusOr<uint64_t> id = Reserve(std::move(filter), format);
  if (!id.ok()) return id.status();
  return Attach(*id, std::move(fd));
}

absl::StatusOr<uint64_t> EventFollowers::Reserve(EventFilter filter,
                                                 EventFormat format) {
  if (absl::Status st = CanAdd(); !st.ok()) return st;
  Follower f;
  f.id = next_id_++;
  f.filter = std::move(filter);
  f.format = format;
  followers_.push_back(std::move(f));
  return followers_.back().id;
}

absl::Status EventFollowers::Attach(uint64_t id, UniqueFd fd) {
  auto it = std::find_if(followers_.begin(), followers_.end(),
                         [id](const Follower& f) { return f.id == id; });
  if (it == followers_.end() || it->fd.valid()) {
    return absl::NotFoundError(
        absl::StrCat("events follower ", id, ": not reserved"));
  }
  if (!fd.valid()) {
    followers_.erase(it);
    return absl::OkStatus();
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    const int err = errno;
    followers_.erase(it);
    return ErrnoStatus(err, "fcntl O_NONBLOCK", "events follower");
  }
  it->fd = std::move(fd);
  return absl::OkStatus();
}

std::string EventFollowers::DroppedNotice(uint64_t count, EventFormat format) {
  const std::string text =
      absl::StrCat("egressd dropped ", count,
                   " records for this client: it did not read them as fast "
                   "as they came");
  if (format == EventFormat::kText) return text;
  // nlohmann::json keeps keys in alphabetical order, the order the records
  // have too, so the notice reads like one of them.
  return nlohmann::json{
      {"dropped", count}, {"event", "records_dropped"}, {"message", text}}
      .dump();
}

bool EventFollowers::Append(Follower& f, const std::string* line,
                            size_t limit) {
  std::string notice;
  if (f.unreported_drops > 0) {
    notice = DroppedNotice(f.unreported_drops, f.format);
    notice.push_back('\n');
  }
  const size_t line_bytes = line == nullptr ? 0 : line->size() + 1;
  if (f.pending.size() + notice.size() + line_bytes > limit) return false;
  f.pending.append(notice);
  if (line != nullptr) {
    f.pending.append(*line);
    f.pending.push_back('\n');
  }
  f.unreported_drops = 0;
  return true;
}

void EventFollowers::Offer(RenderedEvent& event) {
  for (Follower& f : followers_) {
    if (!f.filter.Matches(event.record())) continue;
    if (!Append(f, &event.Line(f.format), limits_.buffer_bytes)) {
      ++dropped_;
      ++f.unreported_drops;
    }
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
      f.stalled = false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

void EventFollowers::Flush() {
  for (Follower& f : followers_) {
    if (!f.fd.valid()) continue;  // reserved: its socket is not here yet
    if (!Drain(f)) {
      f.gone = true;
      continue;
    }
    // Losses are told even when no record follows them soon. The buffer is
    // empty here and the notice goes in without a limit, so that not even a
    // buffer smaller than the notice holds it back for good.
    if (f.unreported_drops > 0 && f.pending.empty()) {
      Append(f, nullptr, std::numeric_limits<size_t>::max());
      if (!Drain(f)) f.gone = true;
    }
  }
  followers_.erase(std::remove_if(followers_.begin(), followers_.end(),
                                  [](const Follower& f) { return f.gone; }),
                   followers_.end());
}

void EventFollowers::FlushWaiting(absl::Time deadline) {
  Flush();
  while (true) {
    std::vector<pollfd> fds;
    for (const Follower& f : followers_) {
      if (f.fd.valid() && !f.stalled &&
          f.pending.size() > limits_.buffer_bytes / 2) {
        fds.push_back({f.fd.get(), POLLOUT, 0});
      }
    }
    if (fds.empty()) return;
    const absl::Duration left = deadline - absl::Now();
    const int r =
        left <= absl::ZeroDuration()
            ? 0
            : poll(fds.data(), fds.size(),
                   static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      // Time is up (or poll failed): whoever did not become writable is
      // stalled for now.
      for (Follower& f : followers_) {
        for (const pollfd& p : fds) {
          if (p.fd == f.fd.get() && (p.revents & POLLOUT) == 0) {
            f.stalled = true;
          }
        }
      }
      return;
    }
    Flush();
  }
}

}  // namespace egress
