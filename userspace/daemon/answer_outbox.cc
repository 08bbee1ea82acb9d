#include "userspace/daemon/answer_outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace egress {

AnswerOutbox::AnswerOutbox() : wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void AnswerOutbox::Send(UniqueFd fd, std::string text, AfterAnswer after) {
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_.push_back({std::move(fd), std::move(text), 0,
                       absl::Now() + kDeadline, std::move(after)});
  }
  const uint64_t one = 1;
  if (wake_) (void)!write(wake_.get(), &one, sizeof(one));
}

void AnswerOutbox::AddPollFds(std::vector<pollfd>& fds) {
  if (wake_) fds.push_back({wake_.get(), POLLIN, 0});
  for (const Answer& a : writing_) fds.push_back({a.fd.get(), POLLOUT, 0});
}

bool AnswerOutbox::WriteSome(Answer& a, absl::Time now) {
  while (a.sent < a.text.size()) {
    const ssize_t n = send(a.fd.get(), a.text.data() + a.sent,
                           a.text.size() - a.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
        now < a.deadline) {
      return true;  // the client has not read yet: next turn
    }
    if (n <= 0) {  // expired or failed: dropped
      if (a.after) a.after(UniqueFd());
      return false;
    }
    a.sent += static_cast<size_t>(n);
  }
  if (a.after) a.after(std::move(a.fd));
  return false;
}

void AnswerOutbox::Flush() {
  uint64_t ignored;
  if (wake_) (void)!read(wake_.get(), &ignored, sizeof(ignored));
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Answer& a : queued_) writing_.push_back(std::move(a));
    queued_.clear();
  }
  const absl::Time now = absl::Now();
  std::vector<Answer> still;
  for (Answer& a : writing_) {
    if (WriteSome(a, now)) still.push_back(std::move(a));
  }
  writing_ = std::move(still);
}

void AnswerOutbox::FlushUntil(absl::Time deadline) {
  Flush();
  while (!writing_.empty()) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return;
    std::vector<pollfd> fds;
    AddPollFds(fds);
    if (poll(fds.data(), fds.size(),
             static_cast<int>(std::min<int64_t>(ms, 100))) < 0 &&
        errno != EINTR) {
      return;
    }
    Flush();
  }
}

}  // namespace egress
