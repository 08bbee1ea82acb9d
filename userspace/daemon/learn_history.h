// Learned traffic kept by the hour for days: <state-dir>/learned.db (SQLite,
// WAL). One row per (target, hour of the last attempt, destination) with its
// count, first and last time and the processes seen, so that `egressctl
// suggest --since 2h` reads only the rows of the last hours through an index
// on (target, last time).
//
// Bounded: rows older than max_age go, and a target keeps at most
// max_rows_per_target rows (its oldest go first); both are checked for each
// target every time its new attempts are added.
#ifndef EGRESS_USERSPACE_DAEMON_LEARN_HISTORY_H_
#define EGRESS_USERSPACE_DAEMON_LEARN_HISTORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/daemon/answer_names.h"
#include "userspace/daemon/sqlite_db.h"
#include "userspace/policy/suggest.h"

namespace egress {

struct LearnLimits {
  // Seven days: a weekly job is seen, and a week of history for 50 targets
  // stays in tens of megabytes.
  int64_t max_age_ns = int64_t{7} * 86400 * 1'000'000'000;
  // 2,000 destinations for every hour of 48, or fewer for longer.
  int64_t max_rows_per_target = 100'000;
};

class LearnHistory {
 public:
  static absl::StatusOr<std::unique_ptr<LearnHistory>> Open(
      const std::string& path, LearnLimits limits = {});

  // Adds what `target` initiated since the last call (aggregates whose
  // last_seen_ns is in one hour or another), then drops the target's rows
  // older than max_age at `now_ns` and beyond its row cap. One transaction.
  absl::Status Add(const std::string& target,
                   const std::vector<policy::Observation>& seen,
                   int64_t now_ns);
  // Add for several targets in one transaction: all or none (an import
  // that fails for want of room is tried again whole, never counted twice).
  // `imported`, when not empty, is kept in that transaction as the identity
  // of the file the rows come from (Imported).
  using Seen =
      std::vector<std::pair<std::string, std::vector<policy::Observation>>>;
  absl::Status AddAll(const Seen& by_target, int64_t now_ns,
                      const std::string& imported = "");
  // Whether AddAll kept `identity`: a file imported whose rename failed (or
  // egressd stopped between) is not imported again, counting it twice.
  absl::StatusOr<bool> Imported(const std::string& identity) const;
  // The target's destinations attempted at or after `since_ns`, each merged
  // over its hours: counts of every hour whose last attempt is at or after
  // `since_ns` (an hour that straddles it counts whole), the earliest first
  // and latest last time, the processes. Sorted as LearnStore::Query.
  absl::StatusOr<std::vector<policy::Observation>> Query(
      const std::string& target, int64_t since_ns) const;
  // Attempts learning had to leave out, by why ("overflow": a full pending
  // table; "unnameable": unix addresses no rule can name), kept by the hour
  // beside the destinations (and pruned with them) so that `suggest` warns
  // about them after a restart too, and only for the window it reads.
  absl::Status AddNote(const std::string& target, const std::string& why,
                       uint64_t count, int64_t now_ns);
  // Their sums since `since_ns`, by why.
  absl::StatusOr<std::map<std::string, uint64_t>> Notes(
      const std::string& target, int64_t since_ns) const;
  // Which names the target's addresses were resolved from
  // (AnswerNames::TakeChanged), kept so that a restarted egressd still
  // names the destinations a target reaches by addresses it looked up
  // before; pruned by max_age like the rest.
  absl::Status SaveNames(const std::string& target,
                         const std::vector<AnswerNames::Kept>& changed,
                         int64_t now_ns);
  // Every target's, the oldest first.
  absl::StatusOr<std::vector<std::pair<std::string, AnswerNames::Kept>>>
  LoadNames(int64_t now_ns) const;
  absl::Status Forget(const std::string& target);
  absl::StatusOr<int64_t> Rows(const std::string& target) const;

 private:
  LearnHistory(std::unique_ptr<SqliteDb> db, LearnLimits limits)
      : db_(std::move(db)), limits_(limits) {}
  absl::Status Prune(const std::string& target, int64_t now_ns);
  // Add's writes, in the caller's transaction. mu_ held.
  absl::Status AddLocked(const std::string& target,
                         const std::vector<policy::Observation>& seen,
                         int64_t now_ns);
  // Before each write: learned.db re-created from the open file if it was
  // removed or replaced meanwhile (SqliteDb::KeepAtPath). mu_ held.
  absl::Status KeepAtPath();

  // Adds come from the worker, queries from the control service.
  mutable std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;
  LearnLimits limits_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_LEARN_HISTORY_H_
