#include "userspace/daemon/sqlite_db.h"

#include <sqlite3.h>

#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

SqliteStatement::~SqliteStatement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::BindUnowned(int index,
                                              absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_STATIC);
  return *this;
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status st = db_->Error(rc, sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return st;
}

absl::Status SqliteStatement::Run() {
  EGRESS_ASSIGN_OR_RETURN(bool row, Step());
  (void)row;
  Reset();
  return absl::OkStatus();
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStatement::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string SqliteStatement::Text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(p),
                     sqlite3_column_bytes(stmt_, column));
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(
    const std::string& path) {
  // SQLite counts every allocation under one process-wide mutex unless told
  // not to (SQLITE_CONFIG_MEMSTATUS, on by default): an eighth of the CPU of
  // writing a policy's 100,000 rule rows. egressd never reads those counts.
  // Only possible before SQLite initializes; later opens find it done.
  static std::once_flag no_memstatus;
  std::call_once(no_memstatus,
                 [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path));
  if (rc != SQLITE_OK) return db->Error(rc, "open");
  sqlite3_extended_result_codes(raw, 1);
  // Another connection (a tool reading the file) never makes a change fail
  // at once: it waits up to 5 s for the lock.
  sqlite3_busy_timeout(raw, 5000);
  // journal_mode answers with a row; the others with none. A file that is
  // not a database fails here, at the first read.
  EGRESS_ASSIGN_OR_RETURN(SqliteStatement wal,
                          db->Prepare("PRAGMA journal_mode=WAL"));
  EGRESS_ASSIGN_OR_RETURN(bool row, wal.Step());
  if (!row || wal.Text(0) != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", path, ": cannot switch to WAL journal mode"));
  }
  EGRESS_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  return db;
}

SqliteDb::~SqliteDb() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

int64_t SqliteDb::TotalChanges() const { return sqlite3_total_changes64(db_); }

void SqliteDb::ReleaseMemory() { sqlite3_db_release_memory(db_); }

absl::StatusOr<int64_t> SqliteDb::QueryInt(const std::string& sql,
                                           absl::string_view value) {
  EGRESS_ASSIGN_OR_RETURN(SqliteStatement q, Prepare(sql));
  q.Bind(1, value);
  EGRESS_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

absl::Status SqliteDb::Exec(const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (message != nullptr) sqlite3_free(message);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return absl::OkStatus();
}

absl::StatusOr<SqliteStatement> SqliteDb::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, sql);
  return SqliteStatement(this, stmt);
}

absl::Status SqliteDb::Error(int rc, absl::string_view what) const {
  std::string message =
      db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string where = absl::StrCat("state database ", path_, ": ", what);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat(
          "state database ", path_, " is corrupt (", what, ": ", message,
          "); egressd will not start with it: move it away to start empty, "
          "or restore a backup"));
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(absl::StrCat(where, ": ", message));
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(absl::StrCat(where, ": ", message));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      if (db_ != nullptr && sqlite3_system_errno(db_) != 0) {
        return ErrnoStatus(sqlite3_system_errno(db_), where, path_);
      }
      return absl::UnavailableError(absl::StrCat(where, ": ", message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(where, ": ", message));
    default:
      return absl::InternalError(absl::StrCat(where, ": ", message));
  }
}

absl::StatusOr<SqliteTransaction> SqliteTransaction::Begin(SqliteDb& db) {
  EGRESS_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return SqliteTransaction(&db);
}

SqliteTransaction::~SqliteTransaction() {
  if (db_ != nullptr) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status SqliteTransaction::Commit() {
  SqliteDb* db = db_;
  db_ = nullptr;
  if (absl::Status st = db->Exec("COMMIT"); !st.ok()) {
    db->Exec("ROLLBACK").IgnoreError();
    return st;
  }
  return absl::OkStatus();
}

}  // namespace egress
