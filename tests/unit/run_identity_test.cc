// Who `egressctl run --user/--group` runs the command as: names from the
// texts of /etc/passwd and /etc/group (fixtures here, never the machine's
// files or NSS), numbers as they are, and sudo's caller by default.
#include "userspace/cli/run_identity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::cli {
namespace {

using ::testing::ElementsAre;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "+nisuser::::::\n"
    "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
    "broken:x:notanumber:1:::\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "wheel:x:10:alice,bob\n"
    "alice:x:1000:\n"
    "docker:x:998:bob,alice\n"
    "nogroup:x:65534:\n";

RunIdentityInputs Inputs(const std::string& user, const std::string& group) {
  RunIdentityInputs in;
  in.user = user;
  in.group = group;
  in.passwd = kPasswd;
  in.group_file = kGroup;
  return in;
}

TEST(RunIdentityTest, UserByNameTakesItsGroups) {
  ASSERT_OK_AND_ASSIGN(std::optional<RunIdentity> id,
                       RunIdentityOf(Inputs("alice", "")));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->uid, 1000u);
  EXPECT_EQ(id->gid, 1000u);
  EXPECT_EQ(id->name, "alice");
  EXPECT_THAT(id->groups, ElementsAre(1000u, 10u, 998u));
  EXPECT_FALSE(id->from_sudo);
}

TEST(RunIdentityTest, NumbersAndGroupOption) {
  // A listed uid by number is that user.
  ASSERT_OK_AND_ASSIGN(std::optional<RunIdentity> id,
                       RunIdentityOf(Inputs("65534", "")));
  EXPECT_EQ(id->uid, 65534u);
  EXPECT_EQ(id->gid, 65534u);
  EXPECT_EQ(id->name, "nobody");
  // --group by name or number sets the primary group.
  ASSERT_OK_AND_ASSIGN(id, RunIdentityOf(Inputs("alice", "docker")));
  EXPECT_EQ(id->gid, 998u);
  EXPECT_THAT(id->groups, ElementsAre(998u, 10u));
  ASSERT_OK_AND_ASSIGN(id, RunIdentityOf(Inputs("4321", "4321")));
  EXPECT_EQ(id->uid, 4321u);
  EXPECT_EQ(id->gid, 4321u);
  EXPECT_THAT(id->groups, ElementsAre(4321u));
}

TEST(RunIdentityTest, WhatCannotBeResolvedIsAnError) {
  EXPECT_STATUS(RunIdentityOf(Inputs("mallory", "")),
                absl::StatusCode::kInvalidArgument, "no user 'mallory'");
  EXPECT_STATUS(RunIdentityOf(Inputs("4321", "")),
                absl::StatusCode::kInvalidArgument, "--group GROUP|GID");
  EXPECT_STATUS(RunIdentityOf(Inputs("alice", "staff")),
                absl::StatusCode::kInvalidArgument, "no group 'staff'");
  EXPECT_STATUS(RunIdentityOf(Inputs("", "wheel")),
                absl::StatusCode::kInvalidArgument, "--group goes with --user");
  // (uid_t)-1 means "unchanged" to setresuid: never an identity.
  EXPECT_STATUS(RunIdentityOf(Inputs("4294967295", "1")),
                absl::StatusCode::kInvalidArgument, "no user");
  EXPECT_STATUS(RunIdentityOf(Inputs("-1", "1")),
                absl::StatusCode::kInvalidArgument, "no user");
}

TEST(RunIdentityTest, SudoCallerIsTheDefaultForRoot) {
  RunIdentityInputs in = Inputs("", "");
  in.sudo_uid = "1000";
  in.sudo_gid = "1000";
  ASSERT_OK_AND_ASSIGN(std::optional<RunIdentity> id, RunIdentityOf(in));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->uid, 1000u);
  EXPECT_EQ(id->gid, 1000u);
  EXPECT_TRUE(id->from_sudo);
  EXPECT_THAT(id->groups, ElementsAre(1000u, 10u, 998u));
  // --user wins over sudo's caller.
  in.user = "nobody";
  ASSERT_OK_AND_ASSIGN(id, RunIdentityOf(in));
  EXPECT_EQ(id->uid, 65534u);
  EXPECT_FALSE(id->from_sudo);
  // Not root: nothing to drop; root without sudo: stays root (the caller
  // warns).
  in.user = "";
  in.euid = 1000;
  ASSERT_OK_AND_ASSIGN(id, RunIdentityOf(in));
  EXPECT_FALSE(id.has_value());
  ASSERT_OK_AND_ASSIGN(id, RunIdentityOf(Inputs("", "")));
  EXPECT_FALSE(id.has_value());
  in.euid = 0;
  in.sudo_uid = "x";
  EXPECT_STATUS(RunIdentityOf(in), absl::StatusCode::kInvalidArgument,
                "SUDO_UID");
}

}  // namespace
}  // namespace egress::cli
