#include "userspace/daemon/sqlite_db.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

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
    const std::string& path, std::string settings) {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db = OpenWal(path, settings);
  if (db.ok() || !absl::IsResourceExhausted(db.status())) return db;
  // A WAL with frames holds rows the file alone does not: not without it.
  struct stat wal;
  if (stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0) return db;
  if (!IdAt(path)) return db;
  absl::StatusOr<std::unique_ptr<SqliteDb>> ro =
      OpenImmutable(path, std::move(settings));
  if (!ro.ok()) return db;
  (*ro)->read_only_ = db.status();
  return ro;
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::OpenImmutable(
    const std::string& path, std::string settings) {
  // A URI: the characters that mean something in one are escaped.
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      absl::StrAppend(&uri, absl::StrFormat("%%%02X", c));
    } else {
      uri.push_back(c);
    }
  }
  absl::StrAppend(&uri, "?immutable=1");
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      uri.c_str(), &raw,
      SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path, std::move(settings)));
  if (rc != SQLITE_OK) return db->Error(rc, "open read-only");
  sqlite3_extended_result_codes(raw, 1);
  EGRESS_RETURN_IF_ERROR(db->Exec("SELECT count(*) FROM sqlite_master"));
  db->files_[0] = IdAt(path);
  return db;
}

absl::Status SqliteDb::ReopenIfReadOnly() {
  if (read_only_.ok()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<SqliteDb>> fresh = OpenWal(path_, settings_);
  if (!fresh.ok()) return fresh.status();
  sqlite3_close_v2(db_);
  db_ = std::exchange((*fresh)->db_, nullptr);
  files_ = (*fresh)->files_;
  read_only_ = absl::OkStatus();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::OpenWal(
    const std::string& path, std::string settings) {
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
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path, std::move(settings)));
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
  if (!db->settings_.empty()) EGRESS_RETURN_IF_ERROR(db->Exec(db->settings_));
  // A read opens the WAL and its index of a database that has pages; a new
  // one's come with its first write (Exec notes them then).
  EGRESS_RETURN_IF_ERROR(db->Exec("SELECT count(*) FROM sqlite_master"));
  db->files_[0] = IdAt(path);
  return db;
}

void SqliteDb::NoteNewFiles() {
  for (size_t i = 1; i < kSuffixes.size(); ++i) {
    if (!files_[i]) files_[i] = IdAt(path_ + kSuffixes[i]);
  }
}

std::optional<SqliteDb::FileId> SqliteDb::IdAt(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::string SqliteDb::FilesMoved() const {
  std::vector<std::string> moved;
  for (size_t i = 0; i < kSuffixes.size(); ++i) {
    if (!files_[i]) continue;
    const std::string name = path_ + kSuffixes[i];
    std::optional<FileId> now = IdAt(name);
    if (!now) {
      moved.push_back(absl::StrCat(name, " was removed"));
    } else if (!(*now == *files_[i])) {
      moved.push_back(absl::StrCat(name, " is another file now"));
    }
  }
  return absl::StrJoin(moved, ", ");
}

absl::Status SqliteDb::KeepAtPath(
    const std::function<void(const std::string&)>& log) {
  EGRESS_RETURN_IF_ERROR(ReopenIfReadOnly());
  const std::string moved = FilesMoved();
  if (moved.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> aside = Recreate();
  if (!aside.ok()) {
    return absl::Status(
        aside.status().code(),
        absl::StrCat(
            "state database ", path_, ": ", moved,
            " while egressd ran, and egressd could not re-create it from the "
            "copy it holds open: ",
            aside.status().message(),
            "; nothing was written. Fix the cause (space, permissions of the "
            "directory) and the next change re-creates it; do not restart "
            "egressd before one succeeds: until then the removed file it "
            "holds open is the only copy"));
  }
  if (log) {
    log(absl::StrCat("state database ", path_, ": ", moved,
                     " while egressd ran; re-created it from the copy "
                     "egressd holds open (every row kept)",
                     aside->empty() ? ""
                                    : "; the other database found there "
                                      "was moved to ",
                     *aside));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SqliteDb::Recreate() {
  // 1. Every committed row into a new file beside the path.
  const std::string fresh = path_ + ".recreating";
  if (unlink(fresh.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove an unfinished copy", fresh);
  }
  absl::Cleanup drop_fresh = [&] { unlink(fresh.c_str()); };
  {
    EGRESS_ASSIGN_OR_RETURN(SqliteStatement copy, Prepare("VACUUM INTO ?"));
    EGRESS_RETURN_IF_ERROR(copy.Bind(1, fresh).Run());
  }
  {
    // VACUUM INTO does not sync what it wrote; root's alone, as the file it
    // replaces.
    UniqueFd fd(open(fresh.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd || fchmod(fd.get(), 0600) != 0 || fsync(fd.get()) != 0) {
      return ErrnoStatus(errno, "sync the copy", fresh);
    }
  }
  // 2. What is at the path: this connection's files are dropped (it keeps
  // them open), another database's are moved aside whole.
  std::string aside;
  const std::string stamp =
      absl::StrCat(".replaced-", absl::ToUnixSeconds(absl::Now()));
  const std::optional<FileId> db_there = IdAt(path_);
  const bool foreign = db_there && !(files_[0] && *db_there == *files_[0]);
  for (size_t i = 0; i < kSuffixes.size(); ++i) {
    const std::string name = path_ + kSuffixes[i];
    const std::optional<FileId> there = IdAt(name);
    if (!there || i == 0) continue;  // the database is renamed over below
    const bool ours = files_[i] && *there == *files_[i];
    if (ours || !foreign) {
      // Ours, or another's without its database: a WAL left at the path
      // would be replayed into the copy.
      if (unlink(name.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "remove the old file", name);
      }
      continue;
    }
    const std::string to = path_ + stamp + kSuffixes[i];
    if (rename(name.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "move another database's file aside", name);
    }
  }
  if (foreign) {
    aside = path_ + stamp;
    if (rename(path_.c_str(), aside.c_str()) != 0) {
      return ErrnoStatus(errno, "move another database aside", path_);
    }
  }
  // 3. The copy at the path, the directory synced: a crash from here on
  // starts from it.
  if (rename(fresh.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, "rename the copy", path_);
  }
  std::move(drop_fresh).Cancel();
  const std::string dir = path_.substr(0, path_.rfind('/') + 1);
  {
    UniqueFd fd(open(dir.empty() ? "." : dir.c_str(),
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || fsync(fd.get()) != 0) {
      return ErrnoStatus(errno, "sync the directory", dir);
    }
  }
  // 4. Connected to it. The old connection must not delete the WAL and
  // index at the path when it closes (SQLite deletes them by name): they
  // are the new connection's.
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> fresh_db,
                          OpenWal(path_, settings_));
  int persist = 1;
  sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  sqlite3_close_v2(db_);
  db_ = std::exchange(fresh_db->db_, nullptr);
  files_ = fresh_db->files_;
  return aside;
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
  // Every write ends in an Exec (a commit, or a statement on its own).
  if (!files_[1] || !files_[2]) NoteNewFiles();
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
