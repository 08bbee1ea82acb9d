#include "userspace/daemon/state_store.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

constexpr int kSchemaVersion = 1;

std::string RuleText(const policy::Rule& r) { return policy::RuleJsonText(r); }

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(
    const std::string& dir, LogFn log) {
  // A page cache of 32 MiB instead of SQLite's 2 MiB: a policy of 100,000
  // rules is ~20 MB of rows, and a smaller cache spills pages to the WAL in
  // the middle of the transaction and reads them back (writing those rows
  // took 2.2-3.6 times as long). Every write and read gives the pages back
  // when it ends (ReleaseMemory), so the cache costs nothing between changes.
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                          SqliteDb::Open(absl::StrCat(dir, "/", kFileName),
                                         "PRAGMA cache_size=-32768"));
  std::unique_ptr<StateStore> store(
      new StateStore(dir, std::move(db), std::move(log)));
  EGRESS_RETURN_IF_ERROR(store->CreateSchema());
  const std::string json = dir + "/state.json";
  if (access(json.c_str(), F_OK) == 0) {
    EGRESS_RETURN_IF_ERROR(store->ImportJson(json));
  }
  return store;
}

absl::Status StateStore::CreateSchema() {
  // Read-only for want of room: the tables are there (a database no write
  // ever reached has none, and fails at Load).
  if (!db_->read_only().ok()) {
    Noted(db_->read_only()).IgnoreError();
    return absl::OkStatus();
  }
  EGRESS_RETURN_IF_ERROR(db_->Exec(
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, "
      "value INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE IF NOT EXISTS targets(name TEXT PRIMARY KEY, "
      "settings TEXT NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE IF NOT EXISTS rules(target TEXT NOT NULL, "
      "seq INTEGER NOT NULL, id INTEGER NOT NULL, rule TEXT NOT NULL, "
      "PRIMARY KEY(target, seq)) WITHOUT ROWID;"));
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement schema,
      db_->Prepare("SELECT value FROM meta WHERE key = 'schema'"));
  EGRESS_ASSIGN_OR_RETURN(bool row, schema.Step());
  if (row && schema.Int(0) != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", db_->path(), " has schema version ", schema.Int(0),
        "; this egressd knows version ", kSchemaVersion));
  }
  if (!row) {
    return db_->Exec(absl::StrCat(
        "INSERT INTO meta(key, value) VALUES('schema', ", kSchemaVersion, ")"));
  }
  return absl::OkStatus();
}

absl::Status StateStore::CheckWritable() {
  // The files were opened at start; a state directory made read-only since
  // (a remount) would not stop writes through them, yet the operator meant
  // it to: refuse as a write of a new file there would.
  if (access(dir_.c_str(), W_OK) != 0) {
    return ErrnoStatus(errno, "write state", dir_);
  }
  return db_->KeepAtPath(log_);
}

absl::Status StateStore::ImportJson(const std::string& json_path) {
  // Corrupt: DataLoss naming state.json; the database is left as it was.
  EGRESS_ASSIGN_OR_RETURN(DaemonState state, LoadState(json_path));
  StateWrite all;
  all.next_ruleset = state.next_ruleset;
  for (const auto& [name, t] : state.targets) {
    all.targets.push_back({name, &t, RulesDelta{}});
  }
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_RETURN_IF_ERROR(db_->Exec("DELETE FROM rules; DELETE FROM targets"));
  seqs_.clear();
  absl::flat_hash_map<std::string, SeqIndex> changed;
  std::vector<SeqEdit> no_edits;  // every target is written whole
  for (const TargetWrite& w : all.targets) {
    EGRESS_RETURN_IF_ERROR(WriteOne(w, changed, no_edits));
  }
  EGRESS_RETURN_IF_ERROR(db_->Exec(absl::StrCat(
      "INSERT OR REPLACE INTO meta(key, value) VALUES('next_ruleset', ",
      all.next_ruleset, ")")));
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  const std::string aside = json_path + ".migrated";
  if (rename(json_path.c_str(), aside.c_str()) != 0) {
    return ErrnoStatus(errno, "rename state.json after importing it",
                       json_path);
  }
  return absl::OkStatus();
}

absl::StatusOr<DaemonState> StateStore::Load() {
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  // Unsigned, as StateFromJson wants the counter (a signed 1 is refused).
  nlohmann::json j = {{"next_ruleset", uint32_t{1}},
                      {"targets", nlohmann::json::array()}};
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement next,
      db_->Prepare("SELECT value FROM meta WHERE key = 'next_ruleset'"));
  EGRESS_ASSIGN_OR_RETURN(bool row, next.Step());
  if (row) j["next_ruleset"] = static_cast<uint32_t>(next.Int(0));
  EGRESS_ASSIGN_OR_RETURN(SqliteStatement targets,
                          db_->Prepare("SELECT settings FROM targets"));
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool more, targets.Step());
    if (!more) break;
    nlohmann::json t = nlohmann::json::parse(targets.Text(0), nullptr, false);
    if (t.is_discarded() || !t.is_object()) {
      return absl::DataLossError(absl::StrCat("state database ", db_->path(),
                                              ": a target's settings are not "
                                              "JSON: ",
                                              targets.Text(0)));
    }
    j["targets"].push_back(std::move(t));
  }
  auto loaded = StateFromJson(j, db_->path());
  if (!loaded.ok()) {
    return absl::DataLossError(
        absl::StrCat("state database is corrupt: ", loaded.status().message()));
  }
  DaemonState state = *std::move(loaded);
  seqs_.clear();
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement rules,
      db_->Prepare("SELECT target, seq, rule FROM rules ORDER BY target, seq"));
  TargetState* current = nullptr;
  SeqIndex* index = nullptr;
  std::string current_name;
  leftovers_.clear();
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool more, rules.Step());
    if (!more) break;
    std::string name = rules.Text(0);
    if (current == nullptr || name != current_name) {
      auto it = state.targets.find(name);
      if (it == state.targets.end()) {
        // Rows written ahead for a target never stored (rows come in
        // target order: each such target is met once).
        if (leftovers_.empty() || leftovers_.back() != name) {
          leftovers_.push_back(std::move(name));
        }
        continue;
      }
      current = &it->second;
      current_name = name;
      index = &seqs_[name];
    }
    auto json = policy::ParseJson(rules.Text(2));
    absl::StatusOr<policy::Rule> rule =
        json.ok() ? policy::RuleFromJson(*json)
                  : absl::StatusOr<policy::Rule>(json.status());
    if (!rule.ok()) {
      return absl::DataLossError(absl::StrCat(
          "state database ", db_->path(), " is corrupt: target ", name,
          ", rule at ", rules.Int(1), ": ", rule.status().message()));
    }
    index->emplace(rule->id, rules.Int(1));
    current->rules.push_back(*std::move(rule));
  }
  return state;
}

absl::StatusOr<size_t> StateStore::DropLeftoverRows() {
  if (leftovers_.empty()) return 0;
  EGRESS_RETURN_IF_ERROR(DeleteUnstoredRows(leftovers_));
  const size_t dropped = leftovers_.size();
  leftovers_.clear();
  return dropped;
}

absl::Status StateStore::DeleteUnstoredRows(
    const std::vector<std::string>& names) {
  EGRESS_RETURN_IF_ERROR(db_->KeepAtPath(log_));
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement del,
      db_->Prepare("DELETE FROM rules WHERE target = ?1 AND NOT EXISTS "
                   "(SELECT 1 FROM targets WHERE name = ?1)"));
  for (const std::string& name : names) {
    EGRESS_RETURN_IF_ERROR(del.Bind(1, name).Run());
  }
  return tx.Commit();
}

absl::StatusOr<StateStore::SeqIndex> StateStore::WriteAllRules(
    const TargetState& t) {
  // The rows go at seq 0, kSeqGap, 2 kSeqGap, ... For a target with rows
  // stored (most at those very keys, when it was written whole before)
  // each replaces its row in place and the rows off that grid are deleted
  // after: deleting every row first, then inserting, freed and took again
  // every page of them (100,000 rules replaced: 250-265 ms, in place
  // 210-220 ms, egress_store_bench). For a new target the rows are inserted
  // after a delete of any left ahead, as replacing costs more than inserting
  // there.
  auto stored = seqs_.find(t.name);
  const bool in_place = stored != seqs_.end() && !stored->second.empty();
  if (!in_place) {
    EGRESS_ASSIGN_OR_RETURN(SqliteStatement del,
                            db_->Prepare("DELETE FROM rules WHERE target = ?"));
    EGRESS_RETURN_IF_ERROR(del.Bind(1, t.name).Run());
  }
  // Rows go kRowsPerInsert to a statement: a statement's own cost (step,
  // reset, bindings cleared) is then paid once per batch, not per row.
  constexpr size_t kRowsPerInsert = 64;
  auto insert_of = [&](size_t rows) {
    std::string sql = absl::StrCat(in_place ? "INSERT OR REPLACE" : "INSERT",
                                   " INTO rules(target, seq, id, rule) VALUES");
    for (size_t j = 0; j < rows; ++j) {
      absl::StrAppend(&sql, j == 0 ? "" : ",", "(?, ?, ?, ?)");
    }
    return db_->Prepare(sql);
  };
  const size_t n = t.rules.size();
  std::optional<SqliteStatement> full;
  if (n >= kRowsPerInsert) {
    absl::StatusOr<SqliteStatement> prepared = insert_of(kRowsPerInsert);
    if (!prepared.ok()) return prepared.status();
    full.emplace(*std::move(prepared));
  }
  // The texts live until their statement has run.
  std::vector<std::string> texts(kRowsPerInsert);
  SeqIndex index;
  index.reserve(n);
  for (size_t at = 0; at < n; at += kRowsPerInsert) {
    const size_t rows = std::min(kRowsPerInsert, n - at);
    std::optional<SqliteStatement> tail;
    if (rows < kRowsPerInsert) {
      absl::StatusOr<SqliteStatement> prepared = insert_of(rows);
      if (!prepared.ok()) return prepared.status();
      tail.emplace(*std::move(prepared));
    }
    SqliteStatement& ins = rows == kRowsPerInsert ? *full : *tail;
    for (size_t j = 0; j < rows; ++j) {
      const policy::Rule& r = t.rules[at + j];
      const int64_t seq = static_cast<int64_t>(at + j) * kSeqGap;
      const int col = static_cast<int>(4 * j);
      texts[j] = RuleText(r);
      ins.BindUnowned(col + 1, t.name)
          .Bind(col + 2, seq)
          .Bind(col + 3, r.id)
          .BindUnowned(col + 4, texts[j]);
      index.emplace(r.id, seq);
    }
    EGRESS_RETURN_IF_ERROR(ins.Run());
  }
  if (!in_place) return index;
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement rest,
      db_->Prepare("DELETE FROM rules WHERE target = ?1 AND (seq < 0 OR "
                   "seq >= ?2 OR seq % ?3 != 0)"));
  EGRESS_RETURN_IF_ERROR(rest.Bind(1, t.name)
                             .Bind(2, static_cast<int64_t>(n) * kSeqGap)
                             .Bind(3, kSeqGap)
                             .Run());
  return index;
}

absl::StatusOr<bool> StateStore::WriteRuleDelta(const TargetState& t,
                                                const RulesDelta& delta,
                                                SeqIndex& index,
                                                std::vector<SeqEdit>& edits) {
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement del,
      db_->Prepare("DELETE FROM rules WHERE target = ? AND seq = ?"));
  for (uint32_t id : delta.removed) {
    auto it = index.find(id);
    if (it == index.end()) continue;
    EGRESS_RETURN_IF_ERROR(del.Bind(1, t.name).Bind(2, it->second).Run());
    edits.push_back({t.name, id, it->second});
    index.erase(it);
  }
  if (delta.put.empty()) return true;
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement put,
      db_->Prepare("INSERT OR REPLACE INTO rules(target, seq, id, rule) "
                   "VALUES(?, ?, ?, ?)"));
  absl::flat_hash_set<uint32_t> puts(delta.put.begin(), delta.put.end());
  // One pass in list order: a rule already stored keeps its row (its seq);
  // a new one goes between the previous rule and the next stored one.
  bool have_prev = false;
  int64_t prev = 0;
  for (size_t i = 0; i < t.rules.size(); ++i) {
    const policy::Rule& r = t.rules[i];
    auto stored = index.find(r.id);
    int64_t seq = 0;
    if (stored != index.end()) {
      seq = stored->second;
    } else {
      std::optional<int64_t> next;
      for (size_t k = i + 1; k < t.rules.size() && !next; ++k) {
        auto n = index.find(t.rules[k].id);
        if (n != index.end()) next = n->second;
      }
      if (!have_prev && !next) {
        seq = 0;
      } else if (!have_prev) {
        seq = *next - kSeqGap;
      } else if (!next) {
        seq = prev + kSeqGap;
      } else if (*next - prev >= 2) {
        seq = prev + (*next - prev) / 2;
      } else {
        return false;  // no room: the caller writes the target whole
      }
      index.emplace(r.id, seq);
      edits.push_back({t.name, r.id, std::nullopt});
    }
    if (have_prev && seq <= prev) return false;  // out of order
    have_prev = true;
    prev = seq;
    if (!puts.contains(r.id)) continue;
    put.BindUnowned(1, t.name).Bind(2, seq).Bind(3, r.id);
    EGRESS_RETURN_IF_ERROR(put.BindUnowned(4, RuleText(r)).Run());
  }
  return true;
}

absl::Status StateStore::WriteAppended(const TargetState& t,
                                       const RulesDelta& delta, SeqIndex& index,
                                       std::vector<SeqEdit>& edits) {
  int64_t seq = 0;
  if (*delta.appended_after != 0) {
    auto after = index.find(*delta.appended_after);
    if (after == index.end()) {
      return absl::DataLossError(
          absl::StrCat("state database ", db_->path(), ": target ", t.name,
                       " has no row of rule id ", *delta.appended_after,
                       ", which new rules follow"));
    }
    seq = after->second + kSeqGap;
  } else if (!index.empty()) {
    return absl::DataLossError(
        absl::StrCat("state database ", db_->path(), ": target ", t.name,
                     " has rows of rules it does not hold"));
  }
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement put,
      db_->Prepare("INSERT INTO rules(target, seq, id, rule) "
                   "VALUES(?, ?, ?, ?)"));
  for (const policy::Rule& r : t.rules) {
    put.BindUnowned(1, t.name).Bind(2, seq).Bind(3, r.id);
    EGRESS_RETURN_IF_ERROR(put.BindUnowned(4, RuleText(r)).Run());
    auto [it, inserted] = index.emplace(r.id, seq);
    if (!inserted) {
      return absl::DataLossError(absl::StrCat("state database ", db_->path(),
                                              ": target ", t.name,
                                              " already has rule id ", r.id));
    }
    edits.push_back({t.name, r.id, std::nullopt});
    seq += kSeqGap;
  }
  return absl::OkStatus();
}

void StateStore::UndoSeqEdits(std::vector<SeqEdit>& edits) {
  for (auto e = edits.rbegin(); e != edits.rend(); ++e) {
    SeqIndex& index = seqs_[e->target];
    if (e->seq) {
      index[e->id] = *e->seq;
    } else {
      index.erase(e->id);
    }
  }
  edits.clear();
}

absl::Status StateStore::WriteOne(
    const TargetWrite& w, absl::flat_hash_map<std::string, SeqIndex>& changed,
    std::vector<SeqEdit>& edits) {
  if (w.target == nullptr) {
    EGRESS_ASSIGN_OR_RETURN(
        SqliteStatement del,
        db_->Prepare("DELETE FROM targets WHERE name = ?1; "));
    EGRESS_RETURN_IF_ERROR(del.Bind(1, w.name).Run());
    EGRESS_ASSIGN_OR_RETURN(SqliteStatement rules,
                            db_->Prepare("DELETE FROM rules WHERE target = ?"));
    EGRESS_RETURN_IF_ERROR(rules.Bind(1, w.name).Run());
    changed[w.name] = SeqIndex{};
    ahead_.erase(w.name);  // its rows are gone with the others
    return absl::OkStatus();
  }
  const TargetState& t = *w.target;
  // Rows written ahead are taken by this write or, when it writes the rules
  // otherwise, replaced.
  auto ahead = ahead_.find(t.name);
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement row,
      db_->Prepare("INSERT OR REPLACE INTO targets(name, settings) "
                   "VALUES(?, ?)"));
  EGRESS_RETURN_IF_ERROR(row.Bind(1, t.name)
                             .Bind(2, policy::JsonText(TargetSettingsToJson(t)))
                             .Run());
  if (!w.rules) return absl::OkStatus();
  if (ahead != ahead_.end()) {
    SeqIndex index = std::move(ahead->second);
    ahead_.erase(ahead);
    if (w.rules->all && w.rules->written_ahead && IndexHolds(index, t.rules)) {
      changed[t.name] = std::move(index);
      return absl::OkStatus();
    }
  }
  if (w.rules->appended_after) {
    // Never written whole: `t.rules` holds only the new rules.
    return WriteAppended(t, *w.rules, seqs_[t.name], edits);
  }
  if (!w.rules->all) {
    // In place: Write puts the edits back when the transaction fails.
    std::vector<SeqEdit> mine;
    absl::StatusOr<bool> fitted =
        WriteRuleDelta(t, *w.rules, seqs_[t.name], mine);
    if (fitted.ok() && *fitted) {
      edits.insert(edits.end(), std::make_move_iterator(mine.begin()),
                   std::make_move_iterator(mine.end()));
      return absl::OkStatus();
    }
    UndoSeqEdits(mine);
    if (!fitted.ok()) return fitted.status();
  }
  EGRESS_ASSIGN_OR_RETURN(changed[t.name], WriteAllRules(t));
  return absl::OkStatus();
}

std::string StateStore::Unwritable() const {
  std::lock_guard<std::mutex> lock(full_mu_);
  return full_;
}

std::string StateStore::FullMessage(const absl::Status& st) const {
  return absl::StrCat("the state directory ", dir_,
                      " (--state_dir) has no room: ", st.message(),
                      "; the change is refused and enforcement is unchanged: "
                      "free space there and retry (no restart needed)");
}

absl::Status StateStore::Noted(absl::Status st) {
  const bool full = absl::IsResourceExhausted(st);
  if (!st.ok() && !full) return st;
  std::string said = full ? FullMessage(st) : "";
  bool turned = false;
  {
    std::lock_guard<std::mutex> lock(full_mu_);
    turned = full_.empty() != said.empty();
    full_ = said;
  }
  if (turned && log_) {
    log_(full ? absl::StrCat("state: ", said)
              : absl::StrCat("state: ", dir_,
                             " has room again: changes are stored again"));
  }
  if (full) return absl::ResourceExhaustedError(said);
  return st;
}

absl::Status StateStore::Write(const StateWrite& write) {
  return Noted(WriteTx(write));
}

absl::Status StateStore::WriteRulesAhead(
    const std::vector<const TargetState*>& targets) {
  return Noted(WriteRulesAheadTx(targets));
}

absl::Status StateStore::WriteTx(const StateWrite& write) {
  EGRESS_RETURN_IF_ERROR(CheckWritable());
  const int64_t changes_before = db_->TotalChanges();
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  absl::flat_hash_map<std::string, SeqIndex> changed;
  std::vector<SeqEdit> edits;
  // The indexes change only with a commit.
  absl::Cleanup undo = [&] { UndoSeqEdits(edits); };
  for (const TargetWrite& w : write.targets) {
    EGRESS_RETURN_IF_ERROR(WriteOne(w, changed, edits));
  }
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement next,
      db_->Prepare("INSERT OR REPLACE INTO meta(key, value) "
                   "VALUES('next_ruleset', ?)"));
  EGRESS_RETURN_IF_ERROR(next.Bind(1, write.next_ruleset).Run());
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  std::move(undo).Cancel();
  last_write_rows_ = db_->TotalChanges() - changes_before;
  for (auto& [name, index] : changed) {
    if (index.empty()) {
      seqs_.erase(name);
    } else {
      seqs_[name] = std::move(index);
    }
  }
  return absl::OkStatus();
}

absl::Status StateStore::WriteRulesAheadTx(
    const std::vector<const TargetState*>& targets) {
  EGRESS_RETURN_IF_ERROR(CheckWritable());
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  absl::flat_hash_map<std::string, SeqIndex> written;
  for (const TargetState* t : targets) {
    EGRESS_ASSIGN_OR_RETURN(
        int64_t stored,
        db_->QueryInt("SELECT count(*) FROM targets WHERE name = ?", t->name));
    if (stored != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("state database ", db_->path(), ": target ", t->name,
                       " is stored: its rules are not written ahead"));
    }
    // Its old rows, if any, are a crashed apply's: replaced.
    EGRESS_ASSIGN_OR_RETURN(written[t->name], WriteAllRules(*t));
  }
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  for (auto& [name, index] : written) ahead_[name] = std::move(index);
  return absl::OkStatus();
}

absl::Status StateStore::DropRulesAhead(const std::vector<std::string>& names) {
  EGRESS_RETURN_IF_ERROR(DeleteUnstoredRows(names));
  for (const std::string& name : names) ahead_.erase(name);
  return absl::OkStatus();
}

bool StateStore::IndexHolds(const SeqIndex& index,
                            const std::vector<policy::Rule>& rules) {
  if (index.size() != rules.size()) return false;
  bool first = true;
  int64_t prev = 0;
  for (const policy::Rule& r : rules) {
    auto it = index.find(r.id);
    if (it == index.end() || (!first && it->second <= prev)) return false;
    first = false;
    prev = it->second;
  }
  return true;
}

absl::StatusOr<int64_t> StateStore::RuleRows(const std::string& target) {
  return db_->QueryInt("SELECT count(*) FROM rules WHERE target = ?", target);
}

}  // namespace egress
