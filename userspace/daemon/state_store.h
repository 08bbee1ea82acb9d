// egressd's state in an embedded database: <state-dir>/state.db (SQLite, WAL
// mode, full synchronous commits). A change writes what it changed (a
// target's settings row, the rule rows it added, changed or removed) in one
// transaction; a start reads what is there.
//
// Schema (version 1), general so that new rule kinds and target settings
// need no schema change:
//   meta(key, value)                 "schema", "next_ruleset"
//   targets(name, settings)          settings: the target's JSON (state.h's
//                                    fields) without its rules
//   rules(target, seq, id, rule)     rule: the rule's JSON (rule_json.h);
//                                    seq orders a target's rules (`list`
//                                    numbers), spaced so that a rule can go
//                                    between two others without moving them
// A state.json found at start (egressd before the database) is imported in
// one transaction, replacing what the database held, and renamed
// state.json.migrated.
#ifndef EGRESS_USERSPACE_DAEMON_STATE_STORE_H_
#define EGRESS_USERSPACE_DAEMON_STATE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/daemon/sqlite_db.h"
#include "userspace/daemon/state.h"
#include "userspace/daemon/state_write.h"

namespace egress {

class StateStore {
 public:
  static constexpr const char* kFileName = "state.db";
  // The gap between two consecutive rules' seq when a target is written
  // whole: room for 2^20 - 1 rules inserted between any two before the
  // target is written whole again.
  static constexpr int64_t kSeqGap = int64_t{1} << 20;

  using LogFn = std::function<void(const std::string&)>;
  // Opens (creating) <dir>/state.db and imports <dir>/state.json if there is
  // one. A corrupt database or state.json: DataLoss naming the file. `log`
  // hears of a database re-created because its files were removed or
  // replaced while egressd ran (see Write).
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(
      const std::string& dir, LogFn log = nullptr);

  // Everything the database holds (orphans are never stored). Rows of rules
  // whose target is not stored (written ahead by an apply that crashed
  // before it stored the target) are skipped and remembered for
  // DropLeftoverRows.
  absl::StatusOr<DaemonState> Load();
  // Deletes the rows the last Load skipped, in one transaction: egressd calls
  // it at start, when no apply can have rows ahead, so that no later target
  // of the same name can ever be stored over them. The number of targets
  // whose rows went.
  absl::StatusOr<size_t> DropLeftoverRows();

  // Writes `write` in one transaction: all of it or, on error, none. Every
  // write (this, WriteRulesAhead, DropRulesAhead) first checks that
  // <dir>/state.db is still the file the store has open; if it was removed
  // or replaced, the store re-creates it there from the open file (every
  // row) and says so in the log, or refuses the write saying why
  // (SqliteDb::KeepAtPath): a change is never acknowledged into a file no
  // start reads.
  absl::Status Write(const StateWrite& write);

  // Stores the rows of the rules of targets that are not stored yet, in one
  // transaction, ahead of the Write that adds each target with
  // RulesDelta::written_ahead: an apply writes them while it compiles the
  // rules and fills the maps. Until that Write they are no target's rows:
  // Load skips them, so a start after a crash in between finds the state
  // as it was. A target that is stored is refused (FailedPrecondition),
  // nothing written.
  absl::Status WriteRulesAhead(const std::vector<const TargetState*>& targets);
  // Deletes the rows written ahead for `names` (targets that were not added
  // after all); the rows of a stored target are left alone.
  absl::Status DropRulesAhead(const std::vector<std::string>& names);

  // The rows of rules stored for `target`, and the rows the last Write
  // inserted, changed or deleted (what the tests of the delta writes check).
  absl::StatusOr<int64_t> RuleRows(const std::string& target);
  int64_t last_write_rows() const { return last_write_rows_; }

  // Why changes cannot be stored now ("" = they can): set by a write that
  // failed for want of space (ResourceExhausted: SQLITE_FULL, ENOSPC, EDQUOT),
  // whose error then names the state directory and what to do; cleared by
  // the next write that succeeds. Each turn is logged once. Any thread.
  std::string Unwritable() const;
  // What a failed write says: `st` (ResourceExhausted) told as a full
  // state directory.
  std::string FullMessage(const absl::Status& st) const;

 private:
  // Notes the outcome of a write (Unwritable) and returns it, a
  // ResourceExhausted one as FullMessage says it.
  absl::Status Noted(absl::Status st);
  absl::Status WriteTx(const StateWrite& write);
  absl::Status WriteRulesAheadTx(
      const std::vector<const TargetState*>& targets);

  StateStore(std::string dir, std::unique_ptr<SqliteDb> db, LogFn log)
      : dir_(std::move(dir)), db_(std::move(db)), log_(std::move(log)) {}
  // seq of each stored rule, by id, per target: where a rule goes and which
  // row a removed rule is, without reading the database.
  using SeqIndex = absl::flat_hash_map<uint32_t, int64_t>;
  // What a delta write changed in an index, to put back when its
  // transaction fails: editing the index in place spares a copy of 100,000
  // entries per change.
  struct SeqEdit {
    std::string target;
    uint32_t id = 0;
    std::optional<int64_t> seq;  // before the edit; nullopt: absent
  };

  absl::Status CreateSchema();
  // What every write does first: the directory still writable, the
  // database still at its path.
  absl::Status CheckWritable();
  // Deletes, in one transaction, the rows of rules of each of `names` that
  // is not a stored target (a stored target's rows are left alone).
  absl::Status DeleteUnstoredRows(const std::vector<std::string>& names);
  absl::Status ImportJson(const std::string& json_path);
  // Writes every rule of `t` again (its old rows deleted): the new index.
  absl::StatusOr<SeqIndex> WriteAllRules(const TargetState& t);
  // Writes the delta's rows, editing `index` (each edit logged in `edits`);
  // false when a new rule has no room between its neighbours (the caller
  // undoes the edits and writes the target whole then).
  absl::StatusOr<bool> WriteRuleDelta(const TargetState& t,
                                      const RulesDelta& delta, SeqIndex& index,
                                      std::vector<SeqEdit>& edits);
  // The rows of rules appended after the stored rule `delta.appended_after`
  // (`t.rules` holds just them), each kSeqGap after the one before: no pass
  // over the stored rules. DataLoss when that rule has no row.
  absl::Status WriteAppended(const TargetState& t, const RulesDelta& delta,
                             SeqIndex& index, std::vector<SeqEdit>& edits);
  // Puts back the index entries `edits` changed, newest first.
  void UndoSeqEdits(std::vector<SeqEdit>& edits);
  // Whether `index` (written ahead) holds `rules`' ids in their order.
  static bool IndexHolds(const SeqIndex& index,
                         const std::vector<policy::Rule>& rules);
  absl::Status WriteOne(const TargetWrite& w,
                        absl::flat_hash_map<std::string, SeqIndex>& changed,
                        std::vector<SeqEdit>& edits);

  std::string dir_;
  mutable std::mutex full_mu_;
  std::string full_;  // Unwritable()
  std::unique_ptr<SqliteDb> db_;
  LogFn log_;
  absl::flat_hash_map<std::string, SeqIndex> seqs_;
  // The index of each target's rows written ahead (WriteRulesAhead) until
  // the Write that adds the target takes it.
  absl::flat_hash_map<std::string, SeqIndex> ahead_;
  // The targets of the rows the last Load skipped.
  std::vector<std::string> leftovers_;
  int64_t last_write_rows_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_STATE_STORE_H_
