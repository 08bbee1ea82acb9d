// `egressctl export --dir D` writes policies someone will apply: D must be
// the caller's and writable by no one else.
#include "userspace/cli/export_files.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::cli {
namespace {

using ::testing::HasSubstr;

struct stat DirStat(uid_t uid, mode_t mode) {
  struct stat st = {};
  st.st_uid = uid;
  st.st_mode = S_IFDIR | mode;
  return st;
}

TEST(ExportDirTest, OnlyTheCallersUnsharedDirectoriesPass) {
  EXPECT_OK(CheckExportDir("d", DirStat(0, 0750), 0));
  EXPECT_OK(CheckExportDir("d", DirStat(1000, 0700), 1000));
  EXPECT_OK(CheckExportDir("d", DirStat(1000, 0755), 1000));
  EXPECT_STATUS(CheckExportDir("d", DirStat(1000, 0700), 0),
                absl::StatusCode::kFailedPrecondition,
                "--dir d: owned by uid 1000, not by you (uid 0)");
  EXPECT_STATUS(CheckExportDir("d", DirStat(0, 0770), 0),
                absl::StatusCode::kFailedPrecondition,
                "--dir d: writable by group or others (mode 0770)");
  EXPECT_STATUS(CheckExportDir("/tmp", DirStat(0, 01777), 0),
                absl::StatusCode::kFailedPrecondition,
                "--dir /tmp: writable by group or others (mode 1777)");
  EXPECT_STATUS(CheckExportDir("d", DirStat(0, 0702), 0),
                absl::StatusCode::kFailedPrecondition, "(mode 0702)");
}

class ExportFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base ? base : "/tmp", "/export_files_test.XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    response_.files = {{"web", "web.yaml", "kind: EgressPolicy\n"}};
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool Exported() const { return std::filesystem::exists(dir_ + "/web.yaml"); }

  std::string dir_;
  control::ExportResponse response_;
};

TEST_F(ExportFilesTest, ASharedDirectoryIsRefusedAndLeftAlone) {
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  EXPECT_STATUS(WriteExport(response_, dir_),
                absl::StatusCode::kFailedPrecondition,
                "writable by group or others (mode 0777)");
  EXPECT_FALSE(Exported());
  ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
  ASSERT_OK(WriteExport(response_, dir_));
  std::ifstream in(dir_ + "/web.yaml");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "kind: EgressPolicy\n");
}

TEST_F(ExportFilesTest, AnotherUsersDirectoryIsRefused) {
  // The owner is changed by chown, which needs root; CheckExportDir's test
  // covers the rule without it.
  if (geteuid() != 0) GTEST_SKIP() << "chown needs root";
  ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
  ASSERT_EQ(chown(dir_.c_str(), 65534, static_cast<gid_t>(-1)), 0);
  EXPECT_STATUS(WriteExport(response_, dir_),
                absl::StatusCode::kFailedPrecondition,
                "owned by uid 65534, not by you (uid 0)");
  EXPECT_FALSE(Exported());
}

TEST_F(ExportFilesTest, AMissingDirectoryIsMadeForTheCaller) {
  const std::string sub = dir_ + "/new";
  ASSERT_OK(WriteExport(response_, sub));
  struct stat st;
  ASSERT_EQ(stat(sub.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_mode & 022, 0u);
  EXPECT_TRUE(std::filesystem::exists(sub + "/web.yaml"));
}

}  // namespace
}  // namespace egress::cli
