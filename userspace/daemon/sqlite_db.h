// A thin owner of one SQLite connection (Debian's libsqlite3): open with the
// settings egressd's stores need, statements with bound values, transactions
// that roll back unless committed, and SQLite's errors as absl::Status naming
// the database file.
#ifndef EGRESS_USERSPACE_DAEMON_SQLITE_DB_H_
#define EGRESS_USERSPACE_DAEMON_SQLITE_DB_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace egress {

class SqliteDb;

// A prepared statement. Bind values (1-based, as SQLite counts), Step until
// it says there is no row, Reset to run it again.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  SqliteStatement(const SqliteStatement&) = delete;
  ~SqliteStatement();

  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& Bind(int index, absl::string_view text);
  // Binds `text` without copying it: it must stay alive and unchanged until
  // the statement runs (Run) or is reset. For the rows of a rule write
  // (100,000 of them for one policy).
  SqliteStatement& BindUnowned(int index, absl::string_view text);
  // True when a row is ready (read it with the Column accessors), false
  // when the statement is done.
  absl::StatusOr<bool> Step();
  // Step for statements that return no rows; resets afterwards.
  absl::Status Run();
  void Reset();
  int64_t Int(int column) const;
  std::string Text(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  // Opens (creating) the database at `path` in WAL mode with full
  // synchronous commits: a change that returns OK is on disk. A file that is
  // not a database gives DataLoss naming it. `settings` (PRAGMAs) run after
  // the open, and again on the connection to a re-created file
  // (KeepAtPath).
  // A file system with no room (ResourceExhausted: the WAL or its index
  // cannot be made) does not stop the rows from being read: a database with
  // no WAL left (a clean stop checkpointed it) is then opened read-only and
  // immutable, read_only() says why, and KeepAtPath (the start of every
  // write) tries the full open again, so writes work again once there is
  // room.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(
      const std::string& path, std::string settings = "");
  ~SqliteDb();
  // Why this connection is read-only (OK: it is not).
  const absl::Status& read_only() const { return read_only_; }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that take no values.
  absl::Status Exec(const std::string& sql);
  absl::StatusOr<SqliteStatement> Prepare(const std::string& sql);
  const std::string& path() const { return path_; }
  // Rows inserted, changed or deleted through this connection so far.
  int64_t TotalChanges() const;
  // Frees the connection's cached pages (sqlite3_db_release_memory): what a
  // large write or read cached goes back to the heap at once.
  void ReleaseMemory();
  // The integer a one-row query answers with `value` bound to its one
  // parameter (a count); 0 when it answers no row.
  absl::StatusOr<int64_t> QueryInt(const std::string& sql,
                                   absl::string_view value);

  // Keeps the database at path(): when the files there (the database, its
  // -wal and -shm) are no longer the ones this connection has open (removed
  // by a cleanup job or an operator, replaced by a copy, hidden by a mount),
  // every later write would go into files no start will read. Then this
  // copies every committed row from the open files into a new database at
  // path() (another database found there is moved aside to
  // <path>.replaced-<unix time>, never overwritten), connects to it, and
  // calls `log` with what it found and did. Cheap when nothing changed (a
  // stat of each file): meant for the start of every write. An error, with
  // nothing written, when the copy fails; this connection still holds every
  // row then.
  absl::Status KeepAtPath(const std::function<void(const std::string&)>& log);

  // SQLite's result `rc` as a Status: "state database <path>: <what>:
  // <message>"; corruption is DataLoss, a full disk ResourceExhausted, a
  // read-only file FailedPrecondition, an I/O error the errno's status.
  absl::Status Error(int rc, absl::string_view what) const;

 private:
  // A file as the kernel knows it: what a path names now, or what an open
  // file is, whatever its name.
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const FileId& o) const {
      return dev == o.dev && ino == o.ino;
    }
  };
  // The database, its WAL and its shared-memory index: SQLite's names.
  static constexpr std::array<const char*, 3> kSuffixes = {"", "-wal", "-shm"};

  SqliteDb(sqlite3* db, std::string path, std::string settings)
      : db_(db), path_(std::move(path)), settings_(std::move(settings)) {}
  // Open without the read-only fallback.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> OpenWal(
      const std::string& path, std::string settings);
  // The database file alone, read-only (SQLite's immutable=1: no WAL, no
  // lock files made).
  static absl::StatusOr<std::unique_ptr<SqliteDb>> OpenImmutable(
      const std::string& path, std::string settings);
  // A read-only connection replaced by a full one when that opens now.
  absl::Status ReopenIfReadOnly();
  // The file `path` names now; nullopt when there is none.
  static std::optional<FileId> IdAt(const std::string& path);
  // Notes the WAL and index once they exist (a new database's come with its
  // first write).
  void NoteNewFiles();
  // Which of this connection's files the paths no longer name ("" when all
  // do): "state.db removed", "state.db-wal replaced", ...
  std::string FilesMoved() const;
  // Copies every row into a new file at path() and connects to it (the
  // steps of KeepAtPath); what it moved aside, if anything.
  absl::StatusOr<std::string> Recreate();

  sqlite3* db_;
  std::string path_;
  std::string settings_;
  absl::Status read_only_;
  // The files this connection has open, as they were named at the open
  // (nullopt: SQLite had not created that one).
  std::array<std::optional<FileId>, 3> files_;
};

// BEGIN IMMEDIATE (the write lock now, not at the first write); rolled back
// when destroyed without Commit.
class SqliteTransaction {
 public:
  static absl::StatusOr<SqliteTransaction> Begin(SqliteDb& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(other.db_) {
    other.db_ = nullptr;
  }
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  ~SqliteTransaction();
  absl::Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_SQLITE_DB_H_
