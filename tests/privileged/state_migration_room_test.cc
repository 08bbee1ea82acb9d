// A version-1 state database opened by this egressd on a state directory
// with little room: the migration to schema 2 copies every rule row (a new
// table, then the old one dropped), so it needs room for a second copy of
// the rules. Short of it, the store must still open and load what is
// stored (docs/design.md, "A full state directory": an egressd started on a
// full directory still starts), as it does when the directory has no room
// at all (the database opened read-only, read as version 1); the migration
// can wait for the first write that finds room (StateStore::CheckWritable).
// Once the directory has room, the next write migrates and is stored.
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/testing/privileges.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/state.h"
#include "userspace/daemon/state_store.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"

namespace egress {
namespace {

// `text` as an SQL string.
std::string Quoted(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "''"}}), "'");
}

class StateMigrationRoomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    char tmpl[] = "/tmp/egress-migration-room-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    ASSERT_EQ(mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=8m,mode=0700"),
              0)
        << strerror(errno);
    mounted_ = true;
    dir_ = mount_ + "/state";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0) << strerror(errno);
  }

  void TearDown() override {
    if (mounted_) {
      EXPECT_EQ(umount2(mount_.c_str(), MNT_DETACH), 0);
    }
    if (!mount_.empty()) rmdir(mount_.c_str());
  }

  // Writes a file until the tmpfs has no room (bounded by its size), then
  // gives `room` bytes of it back.
  void LeaveRoom(off_t room) {
    const std::string fill = mount_ + "/fill";
    int fd = open(fill.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::vector<char> block(4096, 'x');
    int err = 0;
    off_t size = 0;
    for (int i = 0; i < 4096; ++i) {  // 16 MiB: twice the tmpfs
      const ssize_t n = write(fd, block.data(), block.size());
      if (n < 0) {
        err = errno;
        break;
      }
      size += n;
    }
    ASSERT_EQ(err, ENOSPC);
    ASSERT_GT(size, room);
    ASSERT_EQ(ftruncate(fd, size - room), 0) << strerror(errno);
    close(fd);
  }

  // A target of 6,000 rules, about 1.4 MB of rows: the migration's copy
  // needs that much again.
  static TargetState BigTarget() {
    TargetState web;
    web.name = "web";
    web.id = 3;
    web.cgroup = "/web";
    web.ruleset = 7;
    for (int i = 0; i < 6000; ++i) {
      auto r = policy::ParseRuleWords(
          policy::Action::kAllow,
          {absl::StrCat(1000 + i, "/tcp"),
           absl::StrCat("10.", i / 250, ".", i % 250, ".1")});
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      r->id = web.next_rule_id++;
      r->comment = "a comment long enough to give each row some weight";
      web.rules.push_back(*std::move(r));
    }
    return web;
  }

  // Version 1's schema and rows of `web`, as it wrote them (its WAL
  // checkpointed into the file at close), next_ruleset 42.
  void WriteVersion1(const TargetState& web) {
    {
      sqlite3* raw = nullptr;
      ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &raw), SQLITE_OK);
      std::unique_ptr<sqlite3, int (*)(sqlite3*)> v1(raw, sqlite3_close);
      std::string sql =
          "PRAGMA journal_mode=WAL; BEGIN;"
          "CREATE TABLE meta(key TEXT PRIMARY KEY, "
          "value INTEGER NOT NULL) WITHOUT ROWID;"
          "CREATE TABLE targets(name TEXT PRIMARY KEY, "
          "settings TEXT NOT NULL) WITHOUT ROWID;"
          "CREATE TABLE rules(target TEXT NOT NULL, "
          "seq INTEGER NOT NULL, id INTEGER NOT NULL, rule TEXT NOT NULL, "
          "PRIMARY KEY(target, seq)) WITHOUT ROWID;"
          "INSERT INTO meta(key, value) VALUES('schema', 1);"
          "INSERT INTO meta(key, value) VALUES('next_ruleset', 42);";
      absl::StrAppend(&sql, "INSERT INTO targets VALUES(", Quoted(web.name),
                      ", ", Quoted(policy::JsonText(TargetSettingsToJson(web))),
                      ");");
      for (size_t i = 0; i < web.rules.size(); ++i) {
        absl::StrAppend(&sql, "INSERT INTO rules VALUES(", Quoted(web.name),
                        ", ", i * StateStore::kSeqGap, ", ", web.rules[i].id,
                        ", ", Quoted(policy::RuleJsonText(web.rules[i])), ");");
      }
      absl::StrAppend(&sql, "COMMIT;");
      char* error = nullptr;
      ASSERT_EQ(sqlite3_exec(v1.get(), sql.c_str(), nullptr, nullptr, &error),
                SQLITE_OK)
          << (error ? error : "");
    }
    struct stat db {};
    ASSERT_EQ(stat((dir_ + "/state.db").c_str(), &db), 0);
    ASSERT_GT(db.st_size, 1'000'000) << "rows too small to need room";
  }

  std::string mount_, dir_;
  bool mounted_ = false;
};

TEST_F(StateMigrationRoomTest, AVersion1DatabaseOpensWithoutRoomToMigrate) {
  const TargetState web = BigTarget();
  ASSERT_EQ(web.rules.size(), 6000u);
  ASSERT_NO_FATAL_FAILURE(WriteVersion1(web));
  // Room for the WAL to open, not for a second copy of the rules.
  LeaveRoom(256 * 1024);

  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<DaemonState> state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->next_ruleset, 42u);
  ASSERT_EQ(state->targets.count("web"), 1u);
  EXPECT_EQ(state->targets.at("web").rules, web.rules);

  // Short of room, a change is refused (as on a full directory), and says
  // so; the stored rules stay as they were.
  TargetState added = state->targets.at("web");
  added.name = "api";
  added.id = 4;
  added.cgroup = "/api";
  added.rules.resize(10);
  StateWrite write;
  write.next_ruleset = 43;
  write.targets.push_back({added.name, &added, RulesDelta{}});
  absl::Status refused = (*store)->Write(write);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_NE((*store)->Unwritable(), "");

  // Room again: the write migrates the database and is stored.
  ASSERT_EQ(unlink((mount_ + "/fill").c_str()), 0) << strerror(errno);
  absl::Status stored = (*store)->Write(write);
  ASSERT_TRUE(stored.ok()) << stored;
  EXPECT_EQ((*store)->Unwritable(), "");
  store->reset();

  absl::StatusOr<std::unique_ptr<StateStore>> again = StateStore::Open(dir_);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<DaemonState> reloaded = (*again)->Load();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->next_ruleset, 43u);
  ASSERT_EQ(reloaded->targets.count("web"), 1u);
  EXPECT_EQ(reloaded->targets.at("web").rules, web.rules);
  ASSERT_EQ(reloaded->targets.count("api"), 1u);
  EXPECT_EQ(reloaded->targets.at("api").rules, added.rules);
}

// A state.json beside a version-1 database short of room for its migration
// (an old egressd's file put back): the import replaces every row, so it
// needs no room for the migration's copy. It must write version 2's rows
// into version 2's tables, not version 1's (which have no generation).
TEST_F(StateMigrationRoomTest, StateJsonImportsIntoAVersion1Database) {
  const TargetState web = BigTarget();
  ASSERT_EQ(web.rules.size(), 6000u);
  ASSERT_NO_FATAL_FAILURE(WriteVersion1(web));
  DaemonState old;
  old.next_ruleset = 50;
  TargetState api = web;
  api.name = "api";
  api.id = 4;
  api.cgroup = "/api";
  api.ruleset = 9;
  api.rules.resize(10);
  old.targets["api"] = api;
  ASSERT_TRUE(SaveState(dir_ + "/state.json", old).ok());
  // Room for the rows the import deletes (SQLite's secure_delete writes
  // each freed page over), not for the migration's copy besides.
  ASSERT_NO_FATAL_FAILURE(LeaveRoom(2 * 1024 * 1024));

  std::vector<std::string> log;
  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open(
      dir_, [&](const std::string& line) { log.push_back(line); });
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(access((dir_ + "/state.json.migrated").c_str(), F_OK), 0);
  // The migration at open found no room; the import made version 2.
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& l) {
    return l.find("by the import of") != std::string::npos;
  })) << absl::StrJoin(log, "\n");
  EXPECT_EQ((*store)->Unwritable(), "");
  absl::StatusOr<DaemonState> state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->next_ruleset, 50u);
  EXPECT_EQ(state->targets.count("web"), 0u);
  ASSERT_EQ(state->targets.count("api"), 1u);
  EXPECT_EQ(state->targets.at("api").rules, api.rules);

  // Version 2 now: a write of new rules (a generation of their own) is
  // stored, and read back by the next start.
  ASSERT_EQ(unlink((mount_ + "/fill").c_str()), 0) << strerror(errno);
  api.rules.resize(5);
  StateWrite write;
  write.next_ruleset = 51;
  write.targets.push_back({api.name, &api, RulesDelta{}});
  absl::Status stored = (*store)->Write(write);
  ASSERT_TRUE(stored.ok()) << stored;
  ASSERT_TRUE((*store)->WaitForDeletes().ok());
  store->reset();
  absl::StatusOr<std::unique_ptr<StateStore>> again = StateStore::Open(dir_);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<DaemonState> reloaded = (*again)->Load();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->next_ruleset, 51u);
  ASSERT_EQ(reloaded->targets.count("api"), 1u);
  EXPECT_EQ(reloaded->targets.at("api").rules, api.rules);
}

}  // namespace
}  // namespace egress
