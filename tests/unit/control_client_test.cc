// egressctl's side of the control socket: an answer egressd did not finish
// (it stopped, or dropped the connection) is reported as such, with the
// exit status of a daemon failure, never as bad input.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/cli/exit_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

class ControlClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-client-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/egressd.sock";
    listener_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(
        bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
        0);
    ASSERT_EQ(listen(listener_.get(), 1), 0);
  }
  void TearDown() override { EXPECT_OK(RemoveTree(dir_)); }

  // Calls the daemon while a stand-in for egressd reads the request and
  // writes `answer` (no newline unless it has one), then closes.
  absl::StatusOr<std::string> CallWhileAnswering(const std::string& answer) {
    std::thread server([&] {
      UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      char buf[4096];
      // The request, up to the client's end of writing.
      while (read(conn.get(), buf, sizeof(buf)) > 0) {
      }
      if (!answer.empty()) {
        (void)!write(conn.get(), answer.data(), answer.size());
      }
    });
    absl::Cleanup join = [&] { server.join(); };
    return CallDaemonLine(path_, R"({"cmd":"apply","policies":[]})",
                          absl::Seconds(10));
  }

  std::string dir_, path_;
  UniqueFd listener_;
};

TEST_F(ControlClientTest, AnAnswerCutOffIsADaemonFailureNotBadInput) {
  absl::StatusOr<std::string> line =
      CallWhileAnswering(R"({"ok":true,"changes":[{"action":"upd)");
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(line.status().message()),
              HasSubstr("egressd stopped or closed the connection before its "
                        "answer was complete"));
  EXPECT_THAT(std::string(line.status().message()),
              HasSubstr("may or may not have been applied: check with "
                        "`egressctl list` or `egressctl status`"));
  EXPECT_EQ(cli::ExitCodeFor(line.status()), 1);
}

TEST_F(ControlClientTest, NoAnswerAtAllSaysTheChangeMayHaveBeenApplied) {
  absl::StatusOr<std::string> line = CallWhileAnswering("");
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(cli::ExitCodeFor(line.status()), 1);
  EXPECT_THAT(std::string(line.status().message()),
              HasSubstr("egressd stopped or closed the connection before "
                        "answering; if it was a change, it may or may not "
                        "have been applied"));
}

TEST_F(ControlClientTest, AWholeAnswerIsTheLine) {
  ASSERT_OK_AND_ASSIGN(std::string line, CallWhileAnswering("{\"ok\":true}\n"));
  EXPECT_EQ(line, "{\"ok\":true}");
}

// egressd closed before it had read the request whole (it stopped while a
// large apply was still being sent): it ran nothing, and the client says so.
TEST_F(ControlClientTest, ARequestCutOffBeforeEgressdTookItWasNotApplied) {
  std::thread server([&] {
    UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  });  // closed at once, the request unread
  absl::Cleanup join = [&] { server.join(); };
  // Larger than a socket buffer: the send outlives the close.
  const std::string request =
      R"({"cmd":"apply","policies":[)" + std::string(8 << 20, ' ') + "]}";
  absl::StatusOr<std::string> line =
      CallDaemonLine(path_, request, absl::Seconds(10));
  ASSERT_FALSE(line.ok());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(line.status().message()),
              HasSubstr("egressd stopped or closed the connection before "
                        "taking the whole request, so it was not applied"));
  EXPECT_EQ(cli::ExitCodeFor(line.status()), 1);
}

}  // namespace
}  // namespace egress
