// What targets initiate, learned from their records (audit and allow
// verdicts, outbound flows), kept in <state_dir>/learned.json, and the
// least-privilege policy proposed from it (`egressctl suggest`).
#ifndef EGRESS_USERSPACE_DAEMON_LEARNER_H_
#define EGRESS_USERSPACE_DAEMON_LEARNER_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/state.h"

namespace egress {

class Learner {
 public:
  explicit Learner(std::string path) : path_(std::move(path)) {}

  // Missing file: nothing learned yet. A corrupt file is moved aside and
  // reported; learning starts afresh (it is not policy).
  absl::Status Load();
  // Records what `target` initiated; `logging` is the target's level (an
  // allowed flow adds what no allow record showed).
  void Learn(const egress_event& e, const std::string& target,
             policy::LoggingLevel logging, int64_t realtime_offset_ns);
  void Forget(const std::string& target);
  absl::StatusOr<control::SuggestResponse> Suggest(
      const TargetState& target, const control::SuggestRequest& request,
      const std::string& node_name) const;
  // The store as file content when it changed since the last call, so the
  // write and fsync can happen away from the loop.
  std::optional<std::string> TakeChanges();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  // Records arrive on the loop; a removed target is forgotten by the worker.
  mutable std::mutex mu_;
  LearnStore store_;
};

// A target as a policy file names it (suggest and export).
policy::PolicyTarget PolicyTargetOf(const TargetState& t);
// RFC 3339 UTC time of a unix second.
std::string Rfc3339(int64_t unix_seconds);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_LEARNER_H_
