#include "userspace/daemon/state_store.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "simdjson.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/rule_json_tree.h"

namespace egress {
namespace {

constexpr int kSchemaVersion = 2;

// The rules table's columns and key (version 2), for the table made new and
// for the one a version-1 database is migrated into.
constexpr char kRulesColumns[] =
    "(target TEXT NOT NULL, gen INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "id INTEGER NOT NULL, rule TEXT NOT NULL, PRIMARY KEY(target, gen, seq)) "
    "WITHOUT ROWID;";

// Version 2's targets and rules tables, made new (their names free).
std::string CreateTablesV2() {
  return absl::StrCat(
      "CREATE TABLE targets(name TEXT PRIMARY KEY, "
      "settings TEXT NOT NULL, gen INTEGER NOT NULL) WITHOUT ROWID;"
      "CREATE TABLE rules",
      kRulesColumns);
}

// A rule row's rule: by simdjson with `parser` reused row after row (a
// start reads every rule: 200,000 rows through nlohmann::json took about
// half of Load), or by nlohmann::json where the simdjson view could answer
// otherwise (ParseForView): the same reader (rule_json_tree.h) either way.
absl::StatusOr<policy::Rule> RuleOfRow(simdjson::dom::parser& parser,
                                       absl::string_view text) {
  if (std::optional<control::SimdjsonView> view =
          control::ParseForView(parser, text)) {
    return policy::RuleFromTree(*view);
  }
  auto json = policy::ParseJson(text);
  if (!json.ok()) return json.status();
  return policy::RuleFromJson(*json);
}

// Rows of an old generation deleted per transaction: a few milliseconds
// each, so that a change waits at most that long for the deleting thread
// (100,000 rows in one delete: ~100 ms).
constexpr int64_t kDeleteChunk = 5000;

std::string RuleText(const policy::Rule& r) { return policy::RuleJsonText(r); }

}  // namespace

StateStore::DbTurn::DbTurn(StateStore& store) : store_(store) {
  store_.waiting_.fetch_add(1);
  store_.db_mu_.lock();
  store_.waiting_.fetch_sub(1);
}

StateStore::DbTurn::~DbTurn() {
  store_.db_mu_.unlock();
  // The deleting thread waits while a change does.
  std::lock_guard<std::mutex> lock(store_.dead_mu_);
  store_.dead_cv_.notify_all();
}

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
  EGRESS_RETURN_IF_ERROR(store->ReadGens());
  const std::string json = dir + "/state.json";
  if (access(json.c_str(), F_OK) == 0) {
    EGRESS_RETURN_IF_ERROR(store->ImportJson(json));
  }
  return store;
}

absl::Status StateStore::CreateSchema() {
  const bool read_only = !db_->read_only().ok();
  // Read-only for want of room: the tables are there (a database no write
  // ever reached has none, and fails at Load).
  if (read_only) Noted(db_->read_only()).IgnoreError();
  EGRESS_ASSIGN_OR_RETURN(
      int64_t has_meta,
      db_->QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name = ?",
                    "meta"));
  int64_t version = 0;
  if (has_meta != 0) {
    EGRESS_ASSIGN_OR_RETURN(
        version,
        db_->QueryInt("SELECT value FROM meta WHERE key = ?", "schema"));
  }
  if (version != 0 && version != 1 && version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", db_->path(), " has schema version ", version,
        "; this egressd knows versions 1 to ", kSchemaVersion));
  }
  schema_ = static_cast<int>(version);
  // A read-only version 1 is read as it is, and migrated by the first write
  // (CheckWritable).
  if (read_only) return absl::OkStatus();
  if (version == 1) {
    // The migration copies every rule row: a directory with room to open
    // the database but not for that copy (an upgrade on a nearly full
    // disk) keeps version 1, read as it is, and refuses changes until it
    // has room, as a full directory does; the first write that finds room
    // migrates (CheckWritable). The failed transaction left nothing.
    absl::Status migrated = MigrateFromV1();
    if (absl::IsResourceExhausted(migrated)) {
      schema_ = 1;
      Noted(migrated).IgnoreError();
      return absl::OkStatus();
    }
    return migrated;
  }
  if (version == kSchemaVersion) return absl::OkStatus();
  // No schema row: no write ever reached this database (version 1 created
  // its tables before that row, not in one transaction): whatever tables it
  // has are empty, and made again.
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_RETURN_IF_ERROR(db_->Exec(
      absl::StrCat("DROP TABLE IF EXISTS rules; DROP TABLE IF EXISTS targets;"
                   "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, "
                   "value INTEGER NOT NULL) WITHOUT ROWID;",
                   CreateTablesV2(),
                   "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ",
                   kSchemaVersion, ")")));
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  schema_ = kSchemaVersion;
  return absl::OkStatus();
}

absl::Status StateStore::MigrateFromV1() {
  // The rules' key gains the generation: a new table, the rows copied (a
  // policy of 100,000 rules: once, at the first start of this version).
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_RETURN_IF_ERROR(db_->Exec(absl::StrCat(
      "ALTER TABLE targets ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;"
      "CREATE TABLE rules_v2",
      kRulesColumns,
      "INSERT INTO rules_v2(target, gen, seq, id, rule) "
      "SELECT target, 0, seq, id, rule FROM rules;"
      "DROP TABLE rules;"
      "ALTER TABLE rules_v2 RENAME TO rules;"
      "UPDATE meta SET value = ",
      kSchemaVersion, " WHERE key = 'schema'")));
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  schema_ = kSchemaVersion;
  if (log_) {
    log_(absl::StrCat("state: ", db_->path(), " migrated to schema version ",
                      kSchemaVersion));
  }
  return absl::OkStatus();
}

absl::Status StateStore::ReadGens() {
  gens_.clear();
  EGRESS_ASSIGN_OR_RETURN(SqliteStatement gens,
                          // Before version 2 (also a read-only database no
                          // schema row reached) the targets have no generation.
                          db_->Prepare(schema_ != kSchemaVersion
                                           ? "SELECT name, 0 FROM targets"
                                           : "SELECT name, gen FROM targets"));
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool more, gens.Step());
    if (!more) break;
    gens_[gens.Text(0)] = gens.Int(1);
    next_gen_ = std::max(next_gen_, gens.Int(1) + 1);
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
  EGRESS_RETURN_IF_ERROR(db_->KeepAtPath(log_));
  if (schema_ == 1) return MigrateFromV1();
  return absl::OkStatus();
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
  if (schema_ == 1) {
    // Still version 1 (no room for the migration's copy at open): every
    // row is replaced, so version 2's tables are made new and empty in
    // this transaction, which needs no room for a copy. The rows below
    // are version 2's (with a generation).
    EGRESS_RETURN_IF_ERROR(db_->Exec(absl::StrCat(
        "DROP TABLE rules; DROP TABLE targets;", CreateTablesV2(),
        "UPDATE meta SET value = ", kSchemaVersion, " WHERE key = 'schema'")));
  } else {
    EGRESS_RETURN_IF_ERROR(db_->Exec("DELETE FROM rules; DELETE FROM targets"));
  }
  seqs_.clear();
  gens_.clear();
  Changed changed;
  std::vector<SeqEdit> no_edits;  // every target is written whole
  for (const TargetWrite& w : all.targets) {
    EGRESS_RETURN_IF_ERROR(WriteOne(w, changed, no_edits));
  }
  EGRESS_RETURN_IF_ERROR(db_->Exec(absl::StrCat(
      "INSERT OR REPLACE INTO meta(key, value) VALUES('next_ruleset', ",
      all.next_ruleset, ")")));
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  if (schema_ == 1) {
    if (log_) {
      log_(absl::StrCat("state: ", db_->path(), " migrated to schema version ",
                        kSchemaVersion, " by the import of ", json_path));
    }
    schema_ = kSchemaVersion;
    // The open found no room for the migration (CreateSchema); this write
    // found room.
    Noted(absl::OkStatus()).IgnoreError();
  }
  for (auto& [name, gen] : changed.gens) {
    if (gen) gens_[name] = *gen;
  }
  const std::string aside = json_path + ".migrated";
  if (rename(json_path.c_str(), aside.c_str()) != 0) {
    return ErrnoStatus(errno, "rename state.json after importing it",
                       json_path);
  }
  return absl::OkStatus();
}

absl::StatusOr<DaemonState> StateStore::Load() {
  DbTurn db_turn(*this);
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  // Unsigned, as StateFromJson wants the counter (a signed 1 is refused).
  nlohmann::json j = {{"next_ruleset", uint32_t{1}},
                      {"targets", nlohmann::json::array()}};
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement next,
      db_->Prepare("SELECT value FROM meta WHERE key = 'next_ruleset'"));
  EGRESS_ASSIGN_OR_RETURN(bool row, next.Step());
  if (row) j["next_ruleset"] = static_cast<uint32_t>(next.Int(0));
  EGRESS_RETURN_IF_ERROR(ReadGens());
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
      db_->Prepare(schema_ != kSchemaVersion
                       ? "SELECT target, 0, seq, rule FROM rules "
                         "ORDER BY target, seq"
                       : "SELECT target, gen, seq, rule FROM rules "
                         "ORDER BY target, gen, seq"));
  simdjson::dom::parser row_parser;
  TargetState* current = nullptr;
  SeqIndex* index = nullptr;
  std::string current_name;
  int64_t current_gen = 0;
  leftovers_.clear();
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool more, rules.Step());
    if (!more) break;
    std::string name = rules.Text(0);
    const int64_t gen = rules.Int(1);
    next_gen_ = std::max(next_gen_, gen + 1);
    if (current == nullptr || name != current_name || gen != current_gen) {
      auto it = state.targets.find(name);
      auto stored_gen = gens_.find(name);
      if (it == state.targets.end() || stored_gen == gens_.end() ||
          stored_gen->second != gen) {
        // Rows written ahead for a target never stored or switched, or of
        // a generation its target left (rows come in target order: each
        // such target is met once, or once per generation).
        current = nullptr;
        if (leftovers_.empty() || leftovers_.back().first != name ||
            leftovers_.back().second != gen) {
          leftovers_.emplace_back(std::move(name), gen);
        }
        continue;
      }
      current = &it->second;
      current_name = name;
      current_gen = gen;
      index = &seqs_[name];
    }
    absl::StatusOr<policy::Rule> rule = RuleOfRow(row_parser, rules.Text(3));
    if (!rule.ok()) {
      return absl::DataLossError(absl::StrCat(
          "state database ", db_->path(), " is corrupt: target ", name,
          ", rule at ", rules.Int(2), ": ", rule.status().message()));
    }
    index->emplace(rule->id, rules.Int(2));
    current->rules.push_back(*std::move(rule));
  }
  return state;
}

absl::StatusOr<size_t> StateStore::DropLeftoverRows() {
  DbTurn db_turn(*this);
  if (leftovers_.empty()) return 0;
  // Rows come in name order: each name's generations are together.
  std::vector<std::string> names;
  for (const DeadGen& d : leftovers_) {
    if (names.empty() || names.back() != d.first) names.push_back(d.first);
  }
  EGRESS_RETURN_IF_ERROR(DeleteUnstoredRows(names));
  leftovers_.clear();
  return names.size();
}

absl::Status StateStore::DeleteUnstoredRows(
    const std::vector<std::string>& names) {
  EGRESS_RETURN_IF_ERROR(db_->KeepAtPath(log_));
  if (schema_ == 1) EGRESS_RETURN_IF_ERROR(MigrateFromV1());
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  // Not stored: the subquery is NULL, and every row of the name goes.
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement del,
      db_->Prepare("DELETE FROM rules WHERE target = ?1 AND gen IS NOT "
                   "(SELECT gen FROM targets WHERE name = ?1)"));
  for (const std::string& name : names) {
    EGRESS_RETURN_IF_ERROR(del.Bind(1, name).Run());
  }
  return tx.Commit();
}

absl::StatusOr<StateStore::SeqIndex> StateStore::WriteAllRules(
    const TargetState& t, int64_t gen, bool in_place) {
  // The rows go at seq 0, kSeqGap, 2 kSeqGap, ... For a target with rows
  // stored (most at those very keys, when it was written whole before)
  // each replaces its row in place and the rows off that grid are deleted
  // after: deleting every row first, then inserting, freed and took again
  // every page of them (100,000 rules replaced: 250-265 ms, in place
  // 210-220 ms, egress_store_bench). In a new generation (a new target, or
  // rows written ahead) the rows are inserted after a delete of any left
  // there, as replacing costs more than inserting there. Only that
  // generation's: the name's other rows (a removed target's of the same
  // name) are the deleting thread's, or a start's to drop.
  if (!in_place) {
    EGRESS_ASSIGN_OR_RETURN(
        SqliteStatement del,
        db_->Prepare("DELETE FROM rules WHERE target = ?1 AND gen = ?2"));
    EGRESS_RETURN_IF_ERROR(del.Bind(1, t.name).Bind(2, gen).Run());
  }
  // Rows go kRowsPerInsert to a statement: a statement's own cost (step,
  // reset, bindings cleared) is then paid once per batch, not per row.
  constexpr size_t kRowsPerInsert = 64;
  auto insert_of = [&](size_t rows) {
    std::string sql = absl::StrCat(in_place ? "INSERT OR REPLACE" : "INSERT",
                                   " INTO rules(target, gen, seq, id, rule) "
                                   "VALUES");
    for (size_t j = 0; j < rows; ++j) {
      absl::StrAppend(&sql, j == 0 ? "" : ",", "(?, ?, ?, ?, ?)");
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
      const int col = static_cast<int>(5 * j);
      texts[j] = RuleText(r);
      ins.BindUnowned(col + 1, t.name)
          .Bind(col + 2, gen)
          .Bind(col + 3, seq)
          .Bind(col + 4, r.id)
          .BindUnowned(col + 5, texts[j]);
      index.emplace(r.id, seq);
    }
    EGRESS_RETURN_IF_ERROR(ins.Run());
  }
  if (!in_place) return index;
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement rest,
      db_->Prepare("DELETE FROM rules WHERE target = ?1 AND gen = ?4 AND "
                   "(seq < 0 OR seq >= ?2 OR seq % ?3 != 0)"));
  EGRESS_RETURN_IF_ERROR(rest.Bind(1, t.name)
                             .Bind(2, static_cast<int64_t>(n) * kSeqGap)
                             .Bind(3, kSeqGap)
                             .Bind(4, gen)
                             .Run());
  return index;
}

absl::StatusOr<bool> StateStore::WriteRuleDelta(const TargetState& t,
                                                int64_t gen,
                                                const RulesDelta& delta,
                                                SeqIndex& index,
                                                std::vector<SeqEdit>& edits) {
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement del,
      db_->Prepare("DELETE FROM rules WHERE target = ? AND gen = ? AND "
                   "seq = ?"));
  for (uint32_t id : delta.removed) {
    auto it = index.find(id);
    if (it == index.end()) continue;
    EGRESS_RETURN_IF_ERROR(
        del.Bind(1, t.name).Bind(2, gen).Bind(3, it->second).Run());
    edits.push_back({t.name, id, it->second});
    index.erase(it);
  }
  if (delta.put.empty()) return true;
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement put,
      db_->Prepare("INSERT OR REPLACE INTO rules(target, gen, seq, id, rule) "
                   "VALUES(?, ?, ?, ?, ?)"));
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
    put.BindUnowned(1, t.name).Bind(2, gen).Bind(3, seq).Bind(4, r.id);
    EGRESS_RETURN_IF_ERROR(put.BindUnowned(5, RuleText(r)).Run());
  }
  return true;
}

absl::Status StateStore::WriteAppended(const TargetState& t, int64_t gen,
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
      db_->Prepare("INSERT INTO rules(target, gen, seq, id, rule) "
                   "VALUES(?, ?, ?, ?, ?)"));
  for (const policy::Rule& r : t.rules) {
    put.BindUnowned(1, t.name).Bind(2, gen).Bind(3, seq).Bind(4, r.id);
    EGRESS_RETURN_IF_ERROR(put.BindUnowned(5, RuleText(r)).Run());
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

absl::Status StateStore::WriteOne(const TargetWrite& w, Changed& changed,
                                  std::vector<SeqEdit>& edits) {
  // The generation stored for the name as this write left it so far (a
  // target removed and added again in one write is new).
  std::optional<int64_t> stored;
  if (auto c = changed.gens.find(w.name); c != changed.gens.end()) {
    stored = c->second;
  } else {
    if (auto s = gens_.find(w.name); s != gens_.end()) stored = s->second;
    // Rows of the name the last Load skipped (no start dropped them): the
    // deleting thread's, as this write makes the name's rows known again.
    for (const DeadGen& d : leftovers_) {
      if (d.first == w.name) changed.dead.push_back(d);
    }
  }
  if (w.target == nullptr) {
    // Only the target's row: its rule rows (100,000 took ~100 ms to delete,
    // which the answer to `target remove` waited for) become a dead
    // generation, deleted after the commit by the deleting thread. A start
    // before that finds no target of theirs and drops them (Load).
    EGRESS_ASSIGN_OR_RETURN(
        SqliteStatement del,
        db_->Prepare("DELETE FROM targets WHERE name = ?1; "));
    EGRESS_RETURN_IF_ERROR(del.Bind(1, w.name).Run());
    if (stored) changed.dead.emplace_back(w.name, *stored);
    if (auto ahead = ahead_.find(w.name); ahead != ahead_.end()) {
      changed.dead.emplace_back(w.name, ahead->second.gen);
      ahead_.erase(ahead);
    }
    changed.seqs[w.name] = SeqIndex{};
    changed.gens[w.name] = std::nullopt;
    return absl::OkStatus();
  }
  const TargetState& t = *w.target;
  // A target not stored gets a generation of its own, past every one this
  // store met: rows of that name still to delete (a removed target's, a
  // crashed apply's) are never its rows, nor are its rows ever deleted
  // with theirs (the deleting thread deletes by name and generation).
  int64_t gen = stored ? *stored : NewGen();
  std::optional<SeqIndex> taken;
  // Rows written ahead are taken by this write or, when it writes the rules
  // otherwise, deleted with their generation.
  // (A new target written without rules keeps them for its next write.)
  if (auto ahead = ahead_.find(t.name);
      ahead != ahead_.end() && (w.rules || stored)) {
    Ahead rows = std::move(ahead->second);
    ahead_.erase(ahead);
    if (w.rules && w.rules->all && w.rules->written_ahead &&
        IndexHolds(rows.index, t.rules)) {
      if (stored) changed.dead.emplace_back(t.name, gen);
      gen = rows.gen;
      taken = std::move(rows.index);
    } else {
      changed.dead.emplace_back(t.name, rows.gen);
    }
  }
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement row,
      db_->Prepare("INSERT OR REPLACE INTO targets(name, settings, gen) "
                   "VALUES(?, ?, ?)"));
  EGRESS_RETURN_IF_ERROR(row.Bind(1, t.name)
                             .Bind(2, policy::JsonText(TargetSettingsToJson(t)))
                             .Bind(3, gen)
                             .Run());
  changed.gens[t.name] = gen;
  if (!w.rules) return absl::OkStatus();
  if (taken) {
    changed.seqs[t.name] = *std::move(taken);
    return absl::OkStatus();
  }
  if (w.rules->appended_after) {
    // Never written whole: `t.rules` holds only the new rules.
    return WriteAppended(t, gen, *w.rules, seqs_[t.name], edits);
  }
  if (!w.rules->all) {
    // In place: Write puts the edits back when the transaction fails.
    std::vector<SeqEdit> mine;
    absl::StatusOr<bool> fitted =
        WriteRuleDelta(t, gen, *w.rules, seqs_[t.name], mine);
    if (fitted.ok() && *fitted) {
      edits.insert(edits.end(), std::make_move_iterator(mine.begin()),
                   std::make_move_iterator(mine.end()));
      return absl::OkStatus();
    }
    UndoSeqEdits(mine);
    if (!fitted.ok()) return fitted.status();
  }
  // A stored target's rows are replaced in place; a new one's go to its
  // new generation.
  auto index = seqs_.find(t.name);
  const bool in_place =
      stored && index != seqs_.end() && !index->second.empty();
  EGRESS_ASSIGN_OR_RETURN(changed.seqs[t.name],
                          WriteAllRules(t, gen, in_place));
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
  DbTurn db_turn(*this);
  return Noted(WriteTx(write));
}

absl::Status StateStore::WriteRulesAhead(
    const std::vector<const TargetState*>& targets) {
  DbTurn db_turn(*this);
  return Noted(WriteRulesAheadTx(targets));
}

absl::Status StateStore::WriteTx(const StateWrite& write) {
  EGRESS_RETURN_IF_ERROR(CheckWritable());
  const int64_t changes_before = db_->TotalChanges();
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  Changed changed;
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
  for (auto& [name, index] : changed.seqs) {
    if (index.empty()) {
      seqs_.erase(name);
    } else {
      seqs_[name] = std::move(index);
    }
  }
  for (auto& [name, gen] : changed.gens) {
    if (gen) {
      gens_[name] = *gen;
    } else {
      gens_.erase(name);
    }
  }
  // Each written name took its leftovers (WriteOne).
  std::erase_if(leftovers_, [&](const DeadGen& d) {
    return changed.gens.contains(d.first);
  });
  // The rows of a generation a target left, or of a removed target: 100,000
  // of them took ~100 ms to delete, which no answer waits for.
  DeleteLater(std::move(changed.dead));
  return absl::OkStatus();
}

absl::Status StateStore::WriteRulesAheadTx(
    const std::vector<const TargetState*>& targets) {
  EGRESS_RETURN_IF_ERROR(CheckWritable());
  absl::Cleanup release = [&] { db_->ReleaseMemory(); };
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  absl::flat_hash_map<std::string, Ahead> written;
  const int64_t first_gen = next_gen_;
  absl::Cleanup unused_gens = [&] { next_gen_ = first_gen; };
  for (const TargetState* t : targets) {
    // In a generation of their own: a stored target's rows stay, and rows
    // of the name still to delete (a removed target's) are left to the
    // deleting thread or the next start.
    Ahead& rows = written[t->name];
    rows.gen = NewGen();
    EGRESS_ASSIGN_OR_RETURN(rows.index, WriteAllRules(*t, rows.gen, false));
  }
  EGRESS_RETURN_IF_ERROR(tx.Commit());
  std::move(unused_gens).Cancel();
  std::vector<DeadGen> dead;
  for (auto& [name, rows] : written) {
    // Rows ahead an apply neither took nor dropped: no one's.
    if (auto old = ahead_.find(name); old != ahead_.end()) {
      dead.emplace_back(name, old->second.gen);
    }
    ahead_[name] = std::move(rows);
  }
  DeleteLater(std::move(dead));
  return absl::OkStatus();
}

absl::Status StateStore::DropRulesAhead(const std::vector<std::string>& names) {
  DbTurn db_turn(*this);
  return DropRulesAheadTx(names);
}

absl::Status StateStore::DropRulesAheadTx(
    const std::vector<std::string>& names) {
  EGRESS_RETURN_IF_ERROR(DeleteUnstoredRows(names));
  for (const std::string& name : names) ahead_.erase(name);
  return absl::OkStatus();
}

void StateStore::DeleteLater(std::vector<DeadGen> dead) {
  if (dead.empty()) return;
  std::lock_guard<std::mutex> lock(dead_mu_);
  for (DeadGen& d : dead) dead_.push_back(std::move(d));
  if (!deleter_.joinable()) {
    try {
      deleter_ = std::thread([this] { DeleteDeadGens(); });
    } catch (const std::system_error& e) {
      // No thread: the rows stay, no target's, until the next start.
      dead_.clear();
      if (log_) {
        log_(
            absl::StrCat("state: rows of old rules left for the next start "
                         "to delete: ",
                         e.what()));
      }
      return;
    }
  }
  dead_cv_.notify_all();
}

void StateStore::DeleteDeadGens() {
  std::unique_lock<std::mutex> lock(dead_mu_);
  for (;;) {
    // A change waiting for the connection goes first (std::mutex is not
    // fair: this thread would take it back chunk after chunk).
    dead_cv_.wait(lock, [&] {
      return stopping_ ||
             (!dead_.empty() && !hold_deletes_ && waiting_.load() == 0);
    });
    if (stopping_) return;
    const DeadGen d = dead_.front();
    deleting_ = true;
    lock.unlock();
    absl::StatusOr<int64_t> deleted = [&]() -> absl::StatusOr<int64_t> {
      std::lock_guard<std::mutex> db_lock(db_mu_);
      absl::Cleanup release = [&] { db_->ReleaseMemory(); };
      // One chunk, in order of the key: each a transaction of its own, so
      // that a change waits for one chunk at most.
      EGRESS_ASSIGN_OR_RETURN(
          SqliteStatement del,
          db_->Prepare("DELETE FROM rules WHERE target = ?1 AND gen = ?2 AND "
                       "seq IN (SELECT seq FROM rules WHERE target = ?1 AND "
                       "gen = ?2 ORDER BY seq LIMIT ?3)"));
      const int64_t before = db_->TotalChanges();
      EGRESS_RETURN_IF_ERROR(
          del.Bind(1, d.first).Bind(2, d.second).Bind(3, kDeleteChunk).Run());
      return db_->TotalChanges() - before;
    }();
    lock.lock();
    deleting_ = false;
    if (!deleted.ok() && log_) {
      log_(absl::StrCat(
          "state: rows of old rules of target ", d.first,
          " left for the next start to delete: ", deleted.status().ToString()));
    }
    // A chunk short of full was the last (a bounded loop: each pass deletes
    // kDeleteChunk rows or ends the generation).
    if (!deleted.ok() || *deleted < kDeleteChunk) dead_.pop_front();
    dead_cv_.notify_all();
  }
}

absl::Status StateStore::WaitForDeletes(int64_t limit_ms) {
  std::unique_lock<std::mutex> lock(dead_mu_);
  if (!dead_cv_.wait_for(lock, std::chrono::milliseconds(limit_ms), [&] {
        return (dead_.empty() || hold_deletes_) && !deleting_;
      })) {
    return absl::DeadlineExceededError(absl::StrCat(
        "state database ", db_->path(), ": old rows of ", dead_.size(),
        " generation(s) not deleted after ", limit_ms, " ms"));
  }
  return absl::OkStatus();
}

void StateStore::HoldDeletes(bool hold) {
  std::lock_guard<std::mutex> lock(dead_mu_);
  hold_deletes_ = hold;
  dead_cv_.notify_all();
}

StateStore::~StateStore() {
  {
    std::lock_guard<std::mutex> lock(dead_mu_);
    stopping_ = true;
    dead_cv_.notify_all();
  }
  if (deleter_.joinable()) deleter_.join();
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
  DbTurn db_turn(*this);
  return db_->QueryInt("SELECT count(*) FROM rules WHERE target = ?", target);
}

}  // namespace egress
