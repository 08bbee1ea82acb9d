#include "userspace/daemon/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "userspace/common/atomic_file.h"
#include "userspace/common/errno_status.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/rule_json.h"

namespace egress {

sigset_t HandledSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  return mask;
}

namespace {

// Connections that have not finished sending their request. Past this bound
// (documented in docs/cli.md) a new one is answered "busy". Answers being
// written do not count: a client that does not read holds only itself.
constexpr size_t kMaxPending = 256;
constexpr int kMaxAcceptsPerTurn = 64;
// How long the listener rests when accept finds no descriptor free: the
// clients wait in the backlog (or time out), the loop does not spin.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(200);
// Larger requests are parsed on the worker, not the loop: only changes are
// that large (a fleet's policies: 21.6 MB for 200 of 1,000 rules, 1.4 s to
// parse and 0.5 s to decode on a 2-core VM, during which no `status` was
// answered). A read request is a few hundred bytes; 256 KiB parses in a few
// ms.
constexpr size_t kLoopParseLimit = 256 * 1024;
// Ring-buffer records are submitted without wake-ups; the poll timeout is
// the drain timer.
constexpr int kDrainMs = 50;
// How long a stopping egressd waits for its clients to take their answers
// (an `apply`'s answer is megabytes): well within systemd's stop timeout.
constexpr absl::Duration kStopFlushBound = absl::Seconds(3);

void Log(const std::string& line) {
  fprintf(stderr, "egressd: %s\n", line.c_str());
}

}  // namespace

void LogReload(const char* why, const absl::StatusOr<control::ApplyResponse>& r,
               const std::string& dir) {
  if (!r.ok()) {
    const std::string msg(r.status().message());
    Log(absl::StrCat(why, ": policy directory ", dir, " ",
                     absl::StartsWith(msg, "partially applied")
                         ? "FAILED PART-WAY"
                         : "rejected, enforcement unchanged",
                     ": ", msg));
    return;
  }
  if (!r->note.empty()) Log(absl::StrCat(why, ": ", r->note));
  for (const control::TargetChange& c : r->changes) {
    std::string line = absl::StrCat(why, ": ", c.action, " target ", c.target,
                                    ": ", c.added.size(), " rules added, ",
                                    c.removed.size(), " removed");
    // A reload that switches a target to enforce (or back) says so.
    if (c.mode && c.mode_from) {
      absl::StrAppend(&line, ", mode ", policy::ModeName(*c.mode_from), " -> ",
                      policy::ModeName(*c.mode));
    }
    if (c.logging && c.logging_from) {
      absl::StrAppend(&line, ", logging ",
                      policy::LoggingLevelName(*c.logging_from), " -> ",
                      policy::LoggingLevelName(*c.logging));
    }
    Log(line);
  }
}

EventLoop::EventLoop(ControlListener& listener, Engine& engine,
                     ControlService& service, Learner& learner,
                     RecordStream& records, Reconciler& reconciler,
                     LoopOptions options)
    : listener_(listener),
      engine_(engine),
      service_(service),
      learner_(learner),
      records_(records),
      reconciler_(reconciler),
      options_(std::move(options)),
      worker_(std::make_unique<Worker>()),
      bound_dev_(listener.bound_dev()),
      bound_ino_(listener.bound_ino()) {}

bool EventLoop::socket_at_path() const {
  if (!socket_at_path_.load()) return false;
  struct stat st;
  if (lstat(listener_.path().c_str(), &st) != 0) return false;
  return S_ISSOCK(st.st_mode) && st.st_dev == bound_dev_.load() &&
         st.st_ino == bound_ino_.load();
}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Stop() { worker_.reset(); }

absl::Status EventLoop::Setup() {
  sigset_t mask = HandledSignals();
  signal_fd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return ErrnoStatus(errno, "signalfd");
  // The policy directory: a change (an edit, a ConfigMap update, which
  // swaps a symlink) is applied like SIGHUP, 1 s after the last change and
  // once no changed policy file is still open (PolicyDirWatch).
  if (!options_.policy_dir.empty()) {
    policy_watch_ = std::make_unique<PolicyDirWatch>(options_.policy_dir);
    if (std::string why; !policy_watch_->Open(&why)) {
      Log(absl::StrCat("not watching ", options_.policy_dir, " (", why,
                       "): reload it with SIGHUP or egressctl reload"));
      policy_watch_.reset();
    } else {
      std::string note;
      (void)policy_watch_->Follow(&note);  // the start applies it anyway
      if (!note.empty()) Log(note);
    }
  }
  const absl::Time now = absl::Now();
  next_expiry_ = now;
  next_learn_save_ = now + absl::Seconds(5);
  next_dns_sweep_ = now;
  next_socket_check_ = now + absl::Seconds(1);
  Log(absl::StrCat("ready on ", options_.socket_path, " (cgroup2 ",
                   options_.cgroup_root, ", ", engine_.TargetCount(),
                   " targets)"));
  return absl::OkStatus();
}

bool EventLoop::HandleSignals() {
  signalfd_siginfo si;
  while (read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) return false;
    if (si.ssi_signo == SIGHUP && !options_.policy_dir.empty()) {
      PostReload("SIGHUP");
    }
  }
  return true;
}

void EventLoop::PostReload(const char* why) {
  if (reload_queued_.exchange(true)) return;  // one is waiting already
  worker_->Post([this, why] {
    reload_queued_.store(false);
    LogReload(why, service_.Reload(), options_.policy_dir);
    if (options_.classify_workloads) options_.classify_workloads();
    reconciler_.Poke();
  });
}

void EventLoop::HandlePolicyWatch(bool readable) {
  const absl::Time now = absl::Now();
  // Editors and ConfigMap updates write in steps: wait for quiet.
  if (readable && policy_watch_->Read()) {
    policy_reload_at_ = now + absl::Seconds(1);
  }
  // The path, not the directory found at start: a symlink swapped to a new
  // release, or a directory made later, is watched from then on.
  if (policy_watch_ && now >= next_policy_follow_) {
    next_policy_follow_ = now + absl::Seconds(1);
    std::string note;
    if (policy_watch_->Follow(&note)) {
      policy_reload_at_ = now + absl::Seconds(1);
    }
    if (!note.empty()) Log(note);
  }
  // A rejected directory is tried again now and then: a unit that was not
  // running yet may be by now.
  if (!options_.policy_dir.empty() && !service_.last_reload_ok() &&
      policy_reload_at_ == absl::InfiniteFuture()) {
    policy_reload_at_ = now + absl::Seconds(30);
  }
  if (now < policy_reload_at_) return;
  // A file half-written is often a valid policy with some of its rules:
  // applied, it would drop the rest until the writer is done.
  if (std::optional<std::string> busy =
          policy_watch_ ? policy_watch_->Busy() : std::nullopt) {
    if (!policy_wait_logged_) {
      Log(absl::StrCat(options_.policy_dir, "/", *busy,
                       " is still open for writing: the directory is "
                       "applied once it is closed"));
      policy_wait_logged_ = true;
    }
    policy_reload_at_ = now + absl::Seconds(1);
    return;
  }
  policy_wait_logged_ = false;
  policy_reload_at_ = absl::InfiniteFuture();
  PostReload("policy directory changed");
}

void EventLoop::SaveLearnedLater() {
  worker_->Post([this] {
    if (absl::Status st = learner_.Flush(); !st.ok()) {
      Log(absl::StrCat("saving learned traffic: ", st.ToString()));
    }
  });
}

void EventLoop::RunTimers() {
  const absl::Time now = absl::Now();
  if (now >= next_expiry_) {
    next_expiry_ = now + absl::Seconds(1);
    if (!expiry_queued_.exchange(true)) {
      worker_->Post([this] {
        std::vector<std::string> changed;
        engine_.ExpireRules(absl::ToUnixSeconds(absl::Now()), &changed);
        service_.AfterExpiry(changed);
        expiry_queued_.store(false);
      });
    }
  }
  if (now >= next_sweep_) {
    // Every 0.5 s: a held-back count is summarized at most a window (1 s)
    // plus this after its first decision, well within 2 s.
    next_sweep_ = now + absl::Milliseconds(500);
    records_.SweepHeldBack();
  }
  if (now >= next_learn_save_) {
    next_learn_save_ = now + absl::Seconds(5);
    SaveLearnedLater();
  }
  // Learned names dead for EGRESS_DNS_SWEEP_NS (10 s) are deleted within
  // 5 s more: a map of live entries, not of old ones.
  if (now >= next_dns_sweep_) {
    next_dns_sweep_ = now + absl::Seconds(5);
    if (!dns_sweep_queued_.exchange(true)) {
      worker_->Post([this] {
        service_.SweepDnsBindings();
        dns_sweep_queued_.store(false);
      });
    }
  }
}

void EventLoop::AcceptNew(std::vector<bool>& readable) {
  for (int i = 0; i < kMaxAcceptsPerTurn; ++i) {
    auto conn = listener_.Accept();
    if (!conn.ok()) {
      // The backlog taken whole (EAGAIN): the shortage, if any, is over.
      if (absl::IsUnavailable(conn.status()) && accept_short_logged_) {
        accept_short_logged_ = false;
        Log("control socket: accepting requests again");
      }
      // EMFILE, ENFILE, ENOBUFS, ENOMEM.
      if (absl::IsResourceExhausted(conn.status())) {
        accept_paused_until_ = absl::Now() + kAcceptPause;
        if (!accept_short_logged_) {
          accept_short_logged_ = true;
          Log(absl::StrCat(
              "control socket: ", conn.status().message(),
              ": new requests wait until descriptors are free (raise "
              "LimitNOFILE= / ulimit -Hn if this lasts)"));
        }
      }
      break;
    }
    if (absl::Status st = CheckPeerIsRoot(conn->get()); !st.ok()) {
      Reply(*std::move(conn), st);
      continue;
    }
    if (pending_.size() >= kMaxPending) {
      Reply(*std::move(conn),
            absl::ResourceExhaustedError(absl::StrCat(
                "egressd is busy: ", kMaxPending,
                " connections have not finished sending a request")));
      continue;
    }
    pending_.push_back(
        {*std::move(conn), std::string(), absl::Now() + absl::Seconds(5)});
    readable.push_back(true);  // egressctl sends at once: try now
  }
}

void EventLoop::CheckSocketPath(std::vector<bool>& readable) {
  const absl::Time now = absl::Now();
  if (now < next_socket_check_) return;
  next_socket_check_ = now + absl::Seconds(1);
  if (options_.check_locks) options_.check_locks();
  const std::string& path = listener_.path();
  ControlListener::PathCheck check = listener_.CheckPath();
  std::string problem;
  switch (check.state) {
    case ControlListener::PathState::kOurs:
      socket_at_path_.store(true);
      socket_problem_logged_.clear();
      return;
    case ControlListener::PathState::kTaken:
      // Never removed: it may be another egressd's socket or an operator's
      // file. egressctl reaches whatever is there, not this egressd.
      problem = absl::StrCat("control socket ", path, " is now ", check.what,
                             "; left as it is: egressctl cannot reach this "
                             "egressd (pid ",
                             getpid(),
                             ") there until it is removed, then egressd binds "
                             "its socket again (checked every second)");
      break;
    case ControlListener::PathState::kMissing: {
      AcceptNew(readable);  // who connected before it went
      absl::Status bound = listener_.Rebind();
      if (bound.ok()) {
        bound_dev_.store(listener_.bound_dev());
        bound_ino_.store(listener_.bound_ino());
        socket_at_path_.store(true);
        socket_problem_logged_.clear();
        Log(absl::StrCat("control socket ", path,
                         " was removed; bound a new one there, egressctl "
                         "reaches egressd again"));
        return;
      }
      problem = absl::StrCat(
          "control socket ", path,
          " was removed and cannot be bound again (retrying every second): ",
          bound.message());
      break;
    }
  }
  socket_at_path_.store(false);
  if (problem != socket_problem_logged_) {
    Log(problem);
    socket_problem_logged_ = problem;
  }
}

void EventLoop::ServePending(const std::vector<bool>& readable) {
  std::vector<Pending> still;
  for (size_t i = 0; i < pending_.size(); ++i) {
    Pending& p = pending_[i];
    absl::StatusOr<std::optional<std::string>> line =
        std::optional<std::string>();
    if (readable[i]) line = ReadAvailableLine(p.fd.get(), &p.buf);
    if (line.ok() && !line->has_value()) {
      if (absl::Now() < p.deadline) {
        still.push_back(std::move(p));
      } else {
        Reply(std::move(p.fd),
              absl::DeadlineExceededError(
                  "control socket: no complete request in 5 s"));
      }
      continue;
    }
    if (!line.ok()) {
      Reply(std::move(p.fd), line.status());
      continue;
    }
    if ((*line)->size() > kLoopParseLimit) {
      ServeLarge(std::move(p.fd), **std::move(line));
      continue;
    }
    Serve(std::move(p.fd), DecodeRequestLine(**line));
  }
  pending_ = std::move(still);
}

void EventLoop::ServeLarge(UniqueFd fd, std::string line) {
  auto conn = std::make_shared<UniqueFd>(std::move(fd));
  auto text = std::make_shared<std::string>(std::move(line));
  worker_->Post([this, conn, text] {
    absl::StatusOr<control::Request> request = DecodeRequestLine(*text);
    // The text is not needed once decoded: tens of MB at fleet scale.
    *text = std::string();
    if (request.ok() && !ControlService::IsChange(*request)) {
      request = absl::InvalidArgumentError(absl::StrCat(
          "control request too large: only a change may be larger than ",
          kLoopParseLimit / 1024, " KiB"));
    }
    if (!request.ok()) {
      Reply(std::move(*conn), request.status());
      return;
    }
    RunChange(*conn, *std::move(request));
  });
}

void EventLoop::RunChange(UniqueFd& conn, control::Request request) {
  absl::StatusOr<control::Response> r = service_.Handle(std::move(request));
  if (options_.classify_workloads) options_.classify_workloads();
  Reply(std::move(conn), r);  // written by the loop
  reconciler_.Poke();         // new targets may need new watches
  // A change of many rules frees hundreds of MB of parse trees and old
  // compiled sets; glibc keeps freed memory mapped until asked. Off the
  // loop and after the answer, so nobody waits for it.
  malloc_trim(0);
}

void EventLoop::Serve(UniqueFd fd, absl::StatusOr<control::Request> request) {
  if (!request.ok()) {
    Reply(std::move(fd), request.status());
    return;
  }
  if (ControlService::IsChange(*request)) {
    // Changes run on the worker, one at a time; reads go on meanwhile.
    auto conn = std::make_shared<UniqueFd>(std::move(fd));
    worker_->Post([this, conn, req = *std::move(request)]() mutable {
      RunChange(*conn, std::move(req));
    });
    return;
  }
  auto* events = std::get_if<control::EventsRequest>(&*request);
  if (events != nullptr && events->follow) {
    // The backlog and the follower are taken together: a record drained
    // while the backlog is being written waits in the follower's buffer,
    // neither lost nor sent twice. The connection stays open: records
    // follow as lines once the answer is written.
    absl::StatusOr<FollowAnswer> start = records_.StartFollow(*events);
    if (!start.ok()) {
      Reply(std::move(fd), start.status());
      return;
    }
    Reply(std::move(fd), control::Response(std::move(start->first)),
          [this, follower = start->follower](UniqueFd conn) {
            records_.Follow(follower, std::move(conn));
          });
    return;
  }
  absl::StatusOr<control::Response> r = service_.Handle(*request);
  // Removing a target frees its rules; a list or export of a large target
  // builds large answers: give that memory back (see the worker above).
  const bool frees_much =
      std::holds_alternative<control::TargetRemoveRequest>(*request) ||
      std::holds_alternative<control::ListRequest>(*request) ||
      std::holds_alternative<control::ExportRequest>(*request);
  absl::Cleanup trim = [frees_much] {
    if (frees_much) malloc_trim(0);
  };
  Reply(std::move(fd), r);
}

void EventLoop::Reply(UniqueFd fd, const absl::StatusOr<control::Response>& r,
                      AnswerOutbox::AfterAnswer after) {
  std::string answer = r.ok() ? control::ResponseText(*r)
                              : policy::JsonText(ErrorResponse(r.status()));
  answer.push_back('\n');
  outbox_.Send(std::move(fd), std::move(answer), std::move(after));
}

absl::Status EventLoop::Run(const std::atomic<bool>* stop) {
  if (absl::Status st = Setup(); !st.ok()) return st;
  while (stop == nullptr || !stop->load()) {
    const bool accepting = absl::Now() >= accept_paused_until_;
    std::vector<pollfd> fds = {
        {accepting ? listener_.fd() : -1, POLLIN, 0},
        {signal_fd_.get(), POLLIN, 0},
        {policy_watch_ ? policy_watch_->fd() : -1, POLLIN, 0}};
    for (const Pending& p : pending_) fds.push_back({p.fd.get(), POLLIN, 0});
    outbox_.AddPollFds(fds);  // after the pending: their indexes stay
    int r = poll(fds.data(), fds.size(), kDrainMs);
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    heartbeat_ns_.store(absl::GetCurrentTimeNanos());
    auto ready = [&](size_t i, short events) {
      return r > 0 && (fds[i].revents & events) != 0;
    };
    if (ready(1, POLLIN) && !HandleSignals()) break;
    HandlePolicyWatch(policy_watch_ && ready(2, POLLIN));
    RunTimers();
    std::vector<bool> readable(pending_.size());
    for (size_t i = 0; i < pending_.size(); ++i) {
      readable[i] = ready(3 + i, POLLIN | POLLHUP);
    }
    if (ready(0, POLLIN)) AcceptNew(readable);
    CheckSocketPath(readable);
    ServePending(readable);
    outbox_.Flush();
    records_.Drain();
    records_.FlushFollowers();
  }
  Log("stopping; enforcement stays pinned");
  records_.Drain();
  Stop();  // the change in progress finishes; nothing new starts
  // Its answer, and the others owed, are written before egressd exits: a
  // client told nothing cannot know whether its change was applied. Bounded:
  // a client that does not read holds the stop for kStopFlushBound at most.
  outbox_.FlushUntil(absl::Now() + kStopFlushBound);
  learner_.Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace egress
