// One egressd of a benchmark's own, run from the built binary as operators
// run it: its control socket, state directory and log under a directory the
// benchmark made, its own pin directory, and `egressctl` against its socket.
// The destructor kills it and removes the pins (unpinned links detach).
// Needs EGRESS_EGRESSD_PATH and EGRESS_EGRESSCTL_PATH (set by CMake); the
// environment's EGRESS_BENCH_EGRESSD and EGRESS_BENCH_EGRESSCTL, when set,
// name other builds' binaries instead: the same rows measured of the code
// before a change.
#ifndef EGRESS_BENCH_EGRESSD_PROCESS_H_
#define EGRESS_BENCH_EGRESSD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress::bench {

// VmRSS and VmHWM of a process, in MiB (0 when it cannot be read).
struct Memory {
  double rss = 0, peak = 0;
};
Memory MemoryOf(pid_t pid);

// The egressd and egressctl binaries run (see the top of this file).
const char* EgressdPath();
const char* EgressctlPath();

class EgressdProcess {
 public:
  // `dir` exists and holds the socket, state and log; `bpffs` is the pin
  // directory (made by egressd, removed here); `extra_args` are more flags.
  EgressdProcess(std::string dir, std::string bpffs,
                 std::vector<std::string> extra_args = {});
  ~EgressdProcess();
  EgressdProcess(const EgressdProcess&) = delete;
  EgressdProcess& operator=(const EgressdProcess&) = delete;

  // Starts egressd and waits (up to 120 s) until it answers a ping.
  absl::Status Start();
  // SIGKILL and reap; nothing if it is not running.
  void Kill();

  // `egressctl --socket ... args`, as an operator types it; a non-zero exit
  // is an error. Returns the output.
  absl::StatusOr<std::string> Ctl(const std::vector<std::string>& args,
                                  absl::Duration timeout = absl::Minutes(10));

  // Targets whose every hook is attached, from `target list -o json`; -1
  // when the list cannot be read.
  int AttachedTargets();

  // GET /metrics from egressd's metrics server (its port from `status`).
  absl::StatusOr<std::string> Metrics();
  // Waits (up to `timeout`) until egressd's start work is done: /metrics
  // says egress_shared_program_set_loaded 1, or has no such series (a set
  // per target). Returns how long after Start() that was seen.
  absl::StatusOr<absl::Duration> AwaitStartWorkDone(
      absl::Duration timeout = absl::Seconds(60));
  // When the last Start() began.
  absl::Time started() const { return started_; }

  Memory memory() const { return MemoryOf(pid_); }
  // The memory once RSS stops moving (two reads 100 ms apart within
  // 0.1 MiB, at most 3 s): egressd answers a change first and frees what the
  // change replaced after, so a read right after the answer sees both.
  Memory SettledMemory() const;
  pid_t pid() const { return pid_; }
  std::string socket() const { return dir_ + "/egressd.sock"; }
  std::string log_path() const { return dir_ + "/egressd.log"; }
  const std::string& bpffs() const { return bpffs_; }

 private:
  std::string dir_;
  std::string bpffs_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  absl::Time started_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_EGRESSD_PROCESS_H_
