#include "userspace/daemon/learn_history.h"

#include <stdio.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

constexpr int64_t kHourNs = int64_t{3600} * 1'000'000'000;
// Process names kept per row (the first ones; names repeat across adds).
constexpr size_t kMaxProcessText = 256;

// The destination as the row's key: "a:<address>" for a unix address,
// "r:<family>:<proto>" for raw sockets, "i:<family>:<address bytes in
// hex>:<proto>:<port>" otherwise, and ":<name>" after it for an address
// resolved from a DNS name (names have no ':'); sorts as LearnStore::Query
// sorts (unix first, raw last); "n:<why>" for a note (AddNote), which Query
// skips. A key an older egressd does not know is
// skipped by its Query, so a database with raw rows still loads there.
std::string KeyOf(const policy::Observation& o) {
  if (!o.unix_path.empty()) return "a:" + o.unix_path;
  if (o.raw) {
    return absl::StrCat("r:", o.family, ":",
                        absl::Dec(o.ip_proto, absl::kZeroPad3));
  }
  const size_t len = o.family == 4 ? 4 : 16;
  return absl::StrCat("i:", o.family, ":",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(o.addr.data()), len)),
                      ":", absl::Dec(o.ip_proto, absl::kZeroPad3), ":",
                      absl::Dec(o.port, absl::kZeroPad5),
                      o.name.empty() ? "" : ":", o.name);
}

bool FromKey(const std::string& key, policy::Observation* o) {
  if (key.rfind("a:", 0) == 0) {
    o->unix_path = key.substr(2);
    return !o->unix_path.empty();
  }
  std::vector<std::string> parts = absl::StrSplit(key, ':');
  int family = 0, proto = 0, port = 0;
  if (parts.size() == 3 && parts[0] == "r") {
    if (!absl::SimpleAtoi(parts[1], &family) ||
        !absl::SimpleAtoi(parts[2], &proto) || (family != 4 && family != 6) ||
        proto < 0 || proto > 255) {
      return false;
    }
    o->raw = true;
    o->family = static_cast<uint8_t>(family);
    o->ip_proto = static_cast<uint8_t>(proto);
    o->port = 0;
    return true;
  }
  if (parts.size() == 6 && !parts[5].empty()) {
    o->name = parts[5];
    parts.pop_back();
  }
  if (parts.size() != 5 || parts[0] != "i" ||
      !absl::SimpleAtoi(parts[1], &family) ||
      !absl::SimpleAtoi(parts[3], &proto) ||
      !absl::SimpleAtoi(parts[4], &port) || (family != 4 && family != 6)) {
    return false;
  }
  std::string bytes = absl::HexStringToBytes(parts[2]);
  if (bytes.size() != (family == 4 ? 4u : 16u)) return false;
  o->family = static_cast<uint8_t>(family);
  std::copy(bytes.begin(), bytes.end(), o->addr.begin());
  o->ip_proto = static_cast<uint8_t>(proto);
  o->port = static_cast<uint16_t>(port);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LearnHistory>> LearnHistory::Open(
    const std::string& path, LearnLimits limits) {
  // Learned traffic is not policy: a crash may lose the last seconds of it,
  // so commits need not wait for the disk.
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                          SqliteDb::Open(path, "PRAGMA synchronous=NORMAL"));
  // Read-only for want of room (SqliteDb::Open): the tables are there, and
  // the next write that finds room opens it whole again.
  if (!db->read_only().ok()) {
    return std::unique_ptr<LearnHistory>(
        new LearnHistory(std::move(db), limits));
  }
  EGRESS_RETURN_IF_ERROR(db->Exec(
      "CREATE TABLE IF NOT EXISTS learned(target TEXT NOT NULL, "
      "hour INTEGER NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL, "
      "first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, "
      "processes TEXT NOT NULL, PRIMARY KEY(target, hour, key)) "
      "WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS learned_by_time ON learned(target, "
      "last_ns);"
      "CREATE TABLE IF NOT EXISTS answer_names(target TEXT NOT NULL, "
      "key TEXT NOT NULL, names TEXT NOT NULL, seen_ns INTEGER NOT NULL, "
      "PRIMARY KEY(target, key)) WITHOUT ROWID;"));
  return std::unique_ptr<LearnHistory>(new LearnHistory(std::move(db), limits));
}

absl::Status LearnHistory::KeepAtPath() {
  // Lost learning would go unnoticed until a `suggest` after a restart
  // missed it; said in egressd's log like a corrupt file moved aside.
  return db_->KeepAtPath([](const std::string& line) {
    fprintf(stderr, "egressd: %s\n", line.c_str());
  });
}

absl::Status LearnHistory::Add(const std::string& target,
                               const std::vector<policy::Observation>& seen,
                               int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_RETURN_IF_ERROR(KeepAtPath());
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_RETURN_IF_ERROR(AddLocked(target, seen, now_ns));
  return tx.Commit();
}

absl::Status LearnHistory::AddAll(const Seen& by_target, int64_t now_ns,
                                  const std::string& imported) {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_RETURN_IF_ERROR(KeepAtPath());
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  for (const auto& [target, seen] : by_target) {
    EGRESS_RETURN_IF_ERROR(AddLocked(target, seen, now_ns));
  }
  if (!imported.empty()) {
    // Made here, not at Open: a learned.db opened read-only for want of
    // room skips Open's tables.
    EGRESS_RETURN_IF_ERROR(
        db_->Exec("CREATE TABLE IF NOT EXISTS imported(identity TEXT PRIMARY "
                  "KEY) WITHOUT ROWID"));
    EGRESS_ASSIGN_OR_RETURN(
        SqliteStatement mark,
        db_->Prepare("INSERT OR IGNORE INTO imported(identity) VALUES(?)"));
    EGRESS_RETURN_IF_ERROR(mark.Bind(1, imported).Run());
  }
  return tx.Commit();
}

absl::StatusOr<bool> LearnHistory::Imported(const std::string& identity) const {
  std::lock_guard<std::mutex> lock(mu_);
  // A learned.db no import ever marked has no such table.
  EGRESS_ASSIGN_OR_RETURN(
      int64_t table,
      db_->QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name = ?",
                    "imported"));
  if (table == 0) return false;
  EGRESS_ASSIGN_OR_RETURN(
      int64_t rows,
      db_->QueryInt("SELECT count(*) FROM imported WHERE identity = ?",
                    identity));
  return rows > 0;
}

absl::Status LearnHistory::AddLocked(
    const std::string& target, const std::vector<policy::Observation>& seen,
    int64_t now_ns) {
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement up,
      db_->Prepare(absl::StrCat(
          "INSERT INTO learned(target, hour, key, count, first_ns, last_ns, "
          "processes) VALUES(?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(target, hour, key) DO UPDATE SET "
          "count = count + excluded.count, "
          "first_ns = min(first_ns, excluded.first_ns), "
          "last_ns = max(last_ns, excluded.last_ns), "
          "processes = CASE WHEN excluded.processes = '' OR "
          "length(processes) > ",
          kMaxProcessText,
          " THEN processes WHEN processes = '' THEN excluded.processes "
          "ELSE processes || char(10) || excluded.processes END")));
  for (const policy::Observation& o : seen) {
    up.Bind(1, target).Bind(2, o.last_seen_ns / kHourNs).Bind(3, KeyOf(o));
    up.Bind(4, static_cast<int64_t>(o.count)).Bind(5, o.first_seen_ns);
    up.Bind(6, o.last_seen_ns).Bind(7, absl::StrJoin(o.processes, "\n"));
    EGRESS_RETURN_IF_ERROR(up.Run());
  }
  return Prune(target, now_ns);
}

absl::Status LearnHistory::AddNote(const std::string& target,
                                   const std::string& why, uint64_t count,
                                   int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_RETURN_IF_ERROR(KeepAtPath());
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement up,
      db_->Prepare("INSERT INTO learned(target, hour, key, count, first_ns, "
                   "last_ns, processes) VALUES(?, ?, ?, ?, ?, ?, '') "
                   "ON CONFLICT(target, hour, key) DO UPDATE SET "
                   "count = count + excluded.count, "
                   "last_ns = max(last_ns, excluded.last_ns)"));
  const std::string key = "n:" + why;
  up.Bind(1, target).Bind(2, now_ns / kHourNs).Bind(3, key);
  up.Bind(4, static_cast<int64_t>(count)).Bind(5, now_ns).Bind(6, now_ns);
  return up.Run();
}

absl::StatusOr<std::map<std::string, uint64_t>> LearnHistory::Notes(
    const std::string& target, int64_t since_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement q,
      db_->Prepare("SELECT substr(key, 3), sum(count) FROM learned "
                   "WHERE target = ? AND last_ns >= ? AND key >= 'n:' AND "
                   "key < 'n;' GROUP BY key"));
  q.Bind(1, target).Bind(2, since_ns);
  std::map<std::string, uint64_t> out;
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out[q.Text(0)] = static_cast<uint64_t>(q.Int(1));
  }
  return out;
}

absl::Status LearnHistory::Prune(const std::string& target, int64_t now_ns) {
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement old,
      db_->Prepare("DELETE FROM learned WHERE target = ? AND last_ns < ?"));
  EGRESS_RETURN_IF_ERROR(
      old.Bind(1, target).Bind(2, now_ns - limits_.max_age_ns).Run());
  // The oldest rows beyond the cap: everything at or before the last time
  // of the row `cap` places from the newest.
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement cap,
      db_->Prepare("DELETE FROM learned WHERE target = ?1 AND last_ns <= "
                   "(SELECT last_ns FROM learned WHERE target = ?1 "
                   "ORDER BY last_ns DESC LIMIT 1 OFFSET ?2)"));
  return cap.Bind(1, target).Bind(2, limits_.max_rows_per_target).Run();
}

absl::StatusOr<std::vector<policy::Observation>> LearnHistory::Query(
    const std::string& target, int64_t since_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement q,
      db_->Prepare("SELECT key, sum(count), min(first_ns), max(last_ns), "
                   "group_concat(processes, char(10)) FROM learned "
                   "WHERE target = ? AND last_ns >= ? GROUP BY key "
                   "ORDER BY key"));
  q.Bind(1, target).Bind(2, since_ns);
  std::vector<policy::Observation> out;
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    policy::Observation o;
    if (!FromKey(q.Text(0), &o)) continue;  // not ours: skipped, not fatal
    o.count = static_cast<uint64_t>(q.Int(1));
    o.first_seen_ns = q.Int(2);
    o.last_seen_ns = q.Int(3);
    for (absl::string_view p : absl::StrSplit(q.Text(4), '\n')) {
      if (!p.empty()) o.processes.emplace_back(p);
    }
    std::sort(o.processes.begin(), o.processes.end());
    o.processes.erase(std::unique(o.processes.begin(), o.processes.end()),
                      o.processes.end());
    out.push_back(std::move(o));
  }
  return out;
}

absl::Status LearnHistory::SaveNames(
    const std::string& target, const std::vector<AnswerNames::Kept>& changed,
    int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_RETURN_IF_ERROR(KeepAtPath());
  EGRESS_ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(*db_));
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement up,
      db_->Prepare("INSERT INTO answer_names(target, key, names, seen_ns) "
                   "VALUES(?, ?, ?, ?) ON CONFLICT(target, key) DO UPDATE "
                   "SET names = excluded.names, seen_ns = excluded.seen_ns"));
  for (const AnswerNames::Kept& k : changed) {
    up.Bind(1, target).Bind(2, k.key).Bind(3, k.names).Bind(4, now_ns);
    EGRESS_RETURN_IF_ERROR(up.Run());
  }
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement old,
      db_->Prepare("DELETE FROM answer_names WHERE seen_ns < ?"));
  EGRESS_RETURN_IF_ERROR(old.Bind(1, now_ns - limits_.max_age_ns).Run());
  return tx.Commit();
}

absl::StatusOr<std::vector<std::pair<std::string, AnswerNames::Kept>>>
LearnHistory::LoadNames(int64_t now_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(
      SqliteStatement q,
      db_->Prepare("SELECT target, key, names FROM answer_names "
                   "WHERE seen_ns >= ? ORDER BY seen_ns"));
  q.Bind(1, now_ns - limits_.max_age_ns);
  std::vector<std::pair<std::string, AnswerNames::Kept>> out;
  for (;;) {
    EGRESS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Text(0), {q.Text(1), q.Text(2)}});
  }
  return out;
}

absl::Status LearnHistory::Forget(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  EGRESS_RETURN_IF_ERROR(KeepAtPath());
  for (const char* sql : {"DELETE FROM learned WHERE target = ?",
                          "DELETE FROM answer_names WHERE target = ?"}) {
    EGRESS_ASSIGN_OR_RETURN(SqliteStatement del, db_->Prepare(sql));
    EGRESS_RETURN_IF_ERROR(del.Bind(1, target).Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LearnHistory::Rows(const std::string& target) const {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->QueryInt("SELECT count(*) FROM learned WHERE target = ?", target);
}

}  // namespace egress
