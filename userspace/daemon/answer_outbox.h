// Answers to control requests, written without ever waiting for the client.
// A client that does not read its (possibly large) answer holds only its
// own connection: the loop writes what the socket takes each turn and drops
// the connection when the answer is not taken within its deadline. Any
// thread may queue an answer (the worker does, for changes); the loop owns
// the sockets.
#ifndef EGRESS_USERSPACE_DAEMON_ANSWER_OUTBOX_H_
#define EGRESS_USERSPACE_DAEMON_ANSWER_OUTBOX_H_

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress {

class AnswerOutbox {
 public:
  // Called with the connection once its answer is written whole (e.g. to
  // keep streaming records to it), or with an invalid fd when the answer
  // was dropped (the client failed or did not read in time), so that what
  // was set aside for the connection can go too.
  using AfterAnswer = std::function<void(UniqueFd)>;

  // How long a client has to read its answer.
  static constexpr absl::Duration kDeadline = absl::Seconds(30);

  AnswerOutbox();

  // Thread-safe. `text` is one complete answer (its newline included).
  void Send(UniqueFd fd, std::string text, AfterAnswer after = nullptr);

  // Loop thread: the descriptors to poll (a wake-up for answers queued by
  // other threads, and each socket with data left), appended to `fds`.
  void AddPollFds(std::vector<pollfd>& fds);
  // Loop thread: writes what each socket takes now; finishes complete
  // answers, drops the expired and the failed.
  void Flush();
  // Loop thread, when egressd stops (nothing queues answers any more):
  // Flush, waiting for the clients to take their answers until all are
  // written or `deadline`; what is left then is dropped with the outbox.
  void FlushUntil(absl::Time deadline);

 private:
  struct Answer {
    UniqueFd fd;
    std::string text;
    size_t sent = 0;
    absl::Time deadline;
    AfterAnswer after;
  };
  // False when the answer is finished (written whole or dropped).
  bool WriteSome(Answer& a, absl::Time now);

  UniqueFd wake_;  // eventfd: another thread queued an answer
  std::mutex mu_;
  std::vector<Answer> queued_;   // guarded by mu_
  std::vector<Answer> writing_;  // loop thread only
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_ANSWER_OUTBOX_H_
