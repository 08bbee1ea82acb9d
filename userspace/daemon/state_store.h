// egressd's state in an embedded database: <state-dir>/state.db (SQLite, WAL
// mode, full synchronous commits). A change writes what it changed (a
// target's settings row, the rule rows it added, changed or removed) in one
// transaction; a start reads what is there.
//
// Schema (version 2), general so that new rule kinds and target settings
// need no schema change:
//   meta(key, value)                 "schema", "next_ruleset"
//   targets(name, settings, gen)     settings: the target's JSON (state.h's
//                                    fields) without its rules; gen: the
//                                    generation of its rule rows
//   rules(target, gen, seq, id,      rule: the rule's JSON (rule_json.h);
//         rule)                      seq orders a target's rules (`list`
//                                    numbers), spaced so that a rule can go
//                                    between two others without moving them
// A target's rules are the rows of its generation only. An apply writes a
// target's new rules ahead in a generation of their own while the enforced
// ones stay as they were; the write that switches the target names the new
// generation in its targets row, and the old generation's rows are deleted
// afterwards, off the change's path. A removal deletes the target's row
// only; its rule rows are deleted afterwards the same way. Rows of any
// other generation or of no stored target (an apply that crashed in
// between, old or removed rows not yet deleted) are never loaded and are
// deleted at the next start. Generations are never reused within a name's
// rows, so a target added again is never deleted with its old rows. A version-1
// database (no generations) is migrated at open, in one transaction: every row
// to generation 0. A state.json found at start (egressd before the database) is
// imported in one transaction, replacing what the database held, and renamed
// state.json.migrated.
#ifndef EGRESS_USERSPACE_DAEMON_STATE_STORE_H_
#define EGRESS_USERSPACE_DAEMON_STATE_STORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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
  // Stops the deleting of old generations (what is left of them is a
  // leftover the next start drops).
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Everything the database holds (orphans are never stored). Rows of rules
  // that are no stored target's (written ahead by an apply that crashed
  // before its switch, or of a generation a target left and whose delete a
  // stop cut short) are skipped and remembered for DropLeftoverRows.
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
  // start reads. A removed target's rule rows (and rows it left ahead) are
  // deleted after the commit by the deleting thread (WaitForDeletes).
  absl::Status Write(const StateWrite& write);

  // Stores the rows of the rules of `targets`, in one transaction, each
  // target's in a new generation, ahead of the Write that adds or switches
  // the target with RulesDelta::written_ahead: an apply writes them while it
  // compiles the rules and fills the maps. Until that Write they are no
  // target's rows: a stored target's rows stay as they were, Load skips the
  // new ones, so a start after a crash in between finds the state as it
  // was. That Write makes the new generation the target's and hands the old
  // one's rows to a thread of the store's own, which deletes them in chunks
  // that let other writes in between.
  absl::Status WriteRulesAhead(const std::vector<const TargetState*>& targets);
  // Deletes the rows written ahead for `names` (targets not added or not
  // switched after all): every row of a target not stored, and the rows of
  // a stored target's other generations; its current rows are left alone.
  absl::Status DropRulesAhead(const std::vector<std::string>& names);

  // Waits until the rows of old generations handed to the deleting thread
  // are gone (or it failed and gave up, which it logs). For tests and
  // benchmarks; DeadlineExceeded after `limit_ms`.
  absl::Status WaitForDeletes(int64_t limit_ms = 60000);
  // While held, the deleting thread deletes nothing: what a process killed
  // before it leaves. For tests.
  void HoldDeletes(bool hold);

  // The rows of rules stored for `target` (of every generation), and the rows
  // the last Write inserted, changed or deleted (what the tests of the delta
  // writes check).
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
  absl::Status DropRulesAheadTx(const std::vector<std::string>& names);
  absl::Status WriteRulesAheadTx(
      const std::vector<const TargetState*>& targets);

  StateStore(std::string dir, std::unique_ptr<SqliteDb> db, LogFn log)
      : dir_(std::move(dir)), db_(std::move(db)), log_(std::move(log)) {}
  // A generation no row of this process's has (gens are never reused).
  int64_t NewGen() { return next_gen_++; }
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
  // Version 1 -> 2 in one transaction: every row in generation 0.
  absl::Status MigrateFromV1();
  // The generation of each stored target (gens_), and next_gen_ past them.
  absl::Status ReadGens();
  // What every write does first: the directory still writable, the
  // database still at its path (and migrated, when it was opened read-only
  // at version 1).
  absl::Status CheckWritable();
  // Deletes, in one transaction, the rows of rules of each of `names` that
  // are no stored target's: every row of a target not stored, the rows of
  // another generation than a stored target's (its own are left alone).
  absl::Status DeleteUnstoredRows(const std::vector<std::string>& names);
  absl::Status ImportJson(const std::string& json_path);
  // Writes every rule of `t` again in generation `gen`: over its rows there
  // (`in_place`), or after deleting them (`gen` new to `t`). The new index.
  absl::StatusOr<SeqIndex> WriteAllRules(const TargetState& t, int64_t gen,
                                         bool in_place);
  // Writes the delta's rows, editing `index` (each edit logged in `edits`);
  // false when a new rule has no room between its neighbours (the caller
  // undoes the edits and writes the target whole then).
  absl::StatusOr<bool> WriteRuleDelta(const TargetState& t, int64_t gen,
                                      const RulesDelta& delta, SeqIndex& index,
                                      std::vector<SeqEdit>& edits);
  // The rows of rules appended after the stored rule `delta.appended_after`
  // (`t.rules` holds just them), each kSeqGap after the one before: no pass
  // over the stored rules. DataLoss when that rule has no row.
  absl::Status WriteAppended(const TargetState& t, int64_t gen,
                             const RulesDelta& delta, SeqIndex& index,
                             std::vector<SeqEdit>& edits);
  // Puts back the index entries `edits` changed, newest first.
  void UndoSeqEdits(std::vector<SeqEdit>& edits);
  // Whether `index` (written ahead) holds `rules`' ids in their order.
  static bool IndexHolds(const SeqIndex& index,
                         const std::vector<policy::Rule>& rules);
  // db_mu_ held by a public call: taken ahead of the deleting thread's next
  // chunk.
  class DbTurn {
   public:
    explicit DbTurn(StateStore& store);
    ~DbTurn();
    DbTurn(const DbTurn&) = delete;
    DbTurn& operator=(const DbTurn&) = delete;

   private:
    StateStore& store_;
  };
  // A target's rows of one generation, no longer any target's.
  using DeadGen = std::pair<std::string, int64_t>;
  // What a Write changes in the store's memory once it commits.
  struct Changed {
    absl::flat_hash_map<std::string, SeqIndex> seqs;  // empty: none
    absl::flat_hash_map<std::string, std::optional<int64_t>> gens;
    std::vector<DeadGen> dead;
  };
  absl::Status WriteOne(const TargetWrite& w, Changed& changed,
                        std::vector<SeqEdit>& edits);
  // Hands `dead` to the deleting thread (started on first use).
  void DeleteLater(std::vector<DeadGen> dead);
  // The deleting thread: chunk by chunk, each its own transaction.
  void DeleteDeadGens();

  std::string dir_;
  mutable std::mutex full_mu_;
  std::string full_;  // Unwritable()
  // The connection and everything below, up to the deleting thread's: held
  // by every public call that uses the database, and by the deleting
  // thread for one chunk at a time.
  std::mutex db_mu_;
  std::atomic<int> waiting_{0};  // public calls waiting for db_mu_
  std::unique_ptr<SqliteDb> db_;
  LogFn log_;
  int schema_ = 0;  // the database's (1 until migrated, when read-only)
  absl::flat_hash_map<std::string, SeqIndex> seqs_;
  // The generation of each stored target's rows.
  absl::flat_hash_map<std::string, int64_t> gens_;
  int64_t next_gen_ = 1;
  // Each target's rows written ahead (WriteRulesAhead), their generation
  // and index, until the Write that adds or switches the target takes them.
  struct Ahead {
    int64_t gen = 0;
    SeqIndex index;
  };
  absl::flat_hash_map<std::string, Ahead> ahead_;
  // The generations of the rows the last Load skipped, in name order, until
  // DropLeftoverRows or a write of their name (which hands them to the
  // deleting thread).
  std::vector<DeadGen> leftovers_;
  int64_t last_write_rows_ = 0;

  // The deleting thread's queue (dead_mu_: taken under db_mu_, never held
  // while taking it).
  std::mutex dead_mu_;
  std::condition_variable dead_cv_;
  std::deque<DeadGen> dead_;
  bool deleting_ = false;  // a chunk is being deleted
  bool hold_deletes_ = false;
  bool stopping_ = false;
  std::thread deleter_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_STATE_STORE_H_
