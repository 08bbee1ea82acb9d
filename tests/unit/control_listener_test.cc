// The control socket's path: a socket left by an earlier egressd is
// replaced, a live one is refused, and anything else at the path (an
// operator's file) is refused and kept.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

class ControlListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-listener-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/egressd.sock";
  }
  void TearDown() override { EXPECT_OK(RemoveTree(dir_)); }

  // A socket file at path_ that nobody listens on (its fd is closed).
  void LeaveStaleSocket() {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
              0);
  }

  std::string dir_, path_;
};

TEST_F(ControlListenerTest, RegularFileAtThePathIsRefusedAndKept) {
  { std::ofstream(path_) << "operator's data\n"; }
  absl::StatusOr<ControlListener> l = ControlListener::Listen(path_);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      std::string(l.status().message()),
      HasSubstr(absl::StrCat("not a socket: ", path_, " is a regular file")));
  std::ifstream in(path_);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "operator's data\n");
}

TEST_F(ControlListenerTest, DirectoryAtThePathIsRefusedAndKept) {
  ASSERT_EQ(mkdir(path_.c_str(), 0700), 0);
  absl::StatusOr<ControlListener> l = ControlListener::Listen(path_);
  ASSERT_FALSE(l.ok());
  EXPECT_THAT(std::string(l.status().message()), HasSubstr("is a directory"));
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(ControlListenerTest, StaleSocketIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(LeaveStaleSocket());
  absl::StatusOr<ControlListener> l = ControlListener::Listen(path_);
  ASSERT_OK(l.status());
  // Bound anew: a second listener finds it live.
  absl::StatusOr<ControlListener> second = ControlListener::Listen(path_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace egress
