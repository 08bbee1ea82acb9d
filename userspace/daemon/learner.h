// What targets initiate, learned from their records (audit and allow
// verdicts, outbound flows), aggregated in memory for a few seconds and then
// kept by the hour in <state_dir>/learned.db (learn_history.h), and the
// least-privilege policy proposed from it (`egressctl suggest`). A target in
// audit mode also reports the DNS answers its own queries got: each
// destination is kept with the name it was resolved from (answer_names.h).
#ifndef EGRESS_USERSPACE_DAEMON_LEARNER_H_
#define EGRESS_USERSPACE_DAEMON_LEARNER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/answer_names.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/learn_history.h"
#include "userspace/daemon/state.h"

namespace egress {

class Learner {
 public:
  // `dir`: the state directory. `dns_ttl_floor_s`: egressd's
  // --dns_ttl_floor, the least time the kernel binds an answer's addresses
  // to a name (docs/dns.md): a destination counts as reached by a name only
  // while such a binding would be live.
  explicit Learner(std::string dir, LearnLimits limits = {},
                   uint32_t dns_ttl_floor_s = EGRESS_DNS_TTL_FLOOR_DEFAULT)
      : dir_(std::move(dir)),
        limits_(limits),
        dns_ttl_floor_s_(dns_ttl_floor_s) {}

  // Opens learned.db and imports a learned.json of an older egressd once
  // (renamed learned.json.migrated). A corrupt learned.json or learned.db
  // is moved aside and reported; learning starts afresh (it is not policy).
  // With no room for the import, egressd starts and Flush imports the file
  // once there is room; until then Suggest says what is left out.
  absl::Status Load();
  // Records what `target` initiated; `allows_recorded`: the target's
  // allowed decisions leave records (policy::LoggingFlags), else an allowed
  // flow adds what no allow record showed.
  void Learn(const egress_event& e, const std::string& target,
             bool allows_recorded, int64_t realtime_offset_ns);
  // Remembers which name the answer's addresses were resolved from, and
  // for how long, for the records of `target` that follow.
  void LearnAnswer(const egress_dns_answer_event& answer,
                   const std::string& target, int64_t realtime_offset_ns);
  void Forget(const std::string& target);
  // Flushes first, so that the last seconds count.
  absl::StatusOr<control::SuggestResponse> Suggest(
      const TargetState& target, const control::SuggestRequest& request,
      const std::string& node_name);
  // Moves what was learned since the last flush into the history (the
  // worker calls it every few seconds, away from the loop).
  absl::Status Flush();

 private:
  std::string dir_;
  LearnLimits limits_;
  uint32_t dns_ttl_floor_s_;
  // Records arrive on the loop; a removed target is forgotten by the worker.
  mutable std::mutex mu_;
  LearnStore pending_;  // since the last flush
  AnswerNames names_;   // address -> name, per target
  // Attempts to unix addresses no rule can name, left out, since the last
  // flush, per target and note (then notes in the history, as the pending
  // table's overflow): counts by why, and the first few addresses of each
  // why, so that suggest can say what was left out.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, uint64_t>>
      unnameable_;
  // The addresses noted per target and why (bounded: kUnnameableShown each).
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>>
      unnameable_shown_;
  std::unique_ptr<LearnHistory> history_;
  // Targets of a learned.json not imported yet for want of room (empty:
  // none waits), under mu_.
  absl::flat_hash_set<std::string> json_waiting_;
  // Held across an import; the log says once that one waits.
  std::mutex import_mu_;
  bool json_waiting_logged_ = false;  // under import_mu_
  // The waiting file's identity and the bytes free in the state directory
  // after its import failed for want of room, under import_mu_: the file is
  // read again only once it changed or more room was made, not at every
  // flush (a large one costs a parse).
  std::string json_waiting_identity_;
  uint64_t json_waiting_free_ = 0;

  // Opens learned.db into history_ and restores the names kept in it.
  absl::Status OpenHistoryLocked();
  // Imports <dir>/learned.json, if there is one, into history_ in one
  // transaction, which also keeps the file's identity, and renames it
  // learned.json.migrated; a rename that fails is said, and the file is not
  // imported again. Without room it stays, and json_waiting_ names its
  // targets.
  absl::Status ImportOlderJson();
  void SetJsonWaiting(absl::flat_hash_set<std::string> targets);
  bool JsonWaiting(const std::string& target) const {
    std::lock_guard<std::mutex> lock(mu_);
    return json_waiting_.contains(target);
  }
  bool JsonWaitsForAnyTarget() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !json_waiting_.empty();
  }
};

// A target as a policy file names it (suggest and export).
policy::PolicyTarget PolicyTargetOf(const TargetState& t);
// RFC 3339 UTC time of a unix second.
std::string Rfc3339(int64_t unix_seconds);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_LEARNER_H_
