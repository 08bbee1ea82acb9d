// egressd's control socket file removed while it runs (systemd-tmpfiles, an
// operator's rm, a /run cleanup): egressd binds a new one at the path, with
// the mode and owner it had, so egressctl reaches it again. A path taken by
// another file or another program's socket is left alone, /healthz says
// egressd is unreachable, and a stopping egressd does not remove it.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/fake_services.h"
#include "tests/testing/poll.h"
#include "tests/testing/text_count.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"

namespace egress::testing {
namespace {

class ControlSocketPathTest : public EgressdTest {
 protected:
  int MetricsPort() {
    nlohmann::json status = CtlJson({"status"});
    return status.value("metrics_port", 0);
  }
  bool Pings() {
    auto r = CallDaemon(socket_path_, {{"cmd", "ping"}}, absl::Seconds(2));
    return r.ok() && ResponseStatus(*r).ok();
  }
  // GET /healthz from the metrics port, not through egressctl, which cannot
  // reach egressd while its socket is away.
  bool Healthy(int port) { return HealthzBody(port) == "ok\n"; }
  bool Unhealthy(int port) { return HealthzBody(port) == "unhealthy\n"; }
  std::string HealthzBody(int port) {
    absl::StatusOr<HttpResponse> r = HttpGet("127.0.0.1", port, "/healthz");
    return r.ok() ? r->body : "";
  }
  size_t LogCount(const std::string& text) {
    return CountOccurrences(DaemonLog(), text);
  }
  // Puts `from` at socket_path_ in one rename: egressd never sees the path
  // empty (it would bind its socket there again first).
  void RenameOverSocket(const std::string& from) {
    ASSERT_EQ(rename(from.c_str(), socket_path_.c_str()), 0) << strerror(errno);
  }
  std::string Dir() const {
    return socket_path_.substr(0, socket_path_.rfind('/'));
  }
};

TEST_F(ControlSocketPathTest, RemovedSocketIsBoundAgainWithItsModeAndOwner) {
  // An operator's choice after start: egressd keeps it for the new socket.
  ASSERT_EQ(chmod(socket_path_.c_str(), 0660), 0);
  ASSERT_EQ(chown(socket_path_.c_str(), 0, 4242), 0);
  ASSERT_TRUE(PollUntil([&] { return Pings(); }));
  // egressd takes the mode and owner from its checks (every second) while
  // the file is there: let two of them see the new ones.
  absl::SleepFor(absl::Milliseconds(2500));
  ASSERT_EQ(unlink(socket_path_.c_str()), 0);

  EXPECT_TRUE(PollUntil([&] { return Pings(); }))
      << "egressctl cannot reach egressd after its socket was removed";
  struct stat st;
  ASSERT_EQ(lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_EQ(LogCount(" was removed; bound a new one there"), 1u) << DaemonLog();
  CtlOk({"status"});
}

// /healthz looks at the path itself: unhealthy as soon as the socket file
// is gone, not only from egressd's next check (every second, which binds
// it again).
TEST_F(ControlSocketPathTest, HealthzIsUnhealthyAtOnceWhenTheSocketIsRemoved) {
  const int port = MetricsPort();
  ASSERT_GT(port, 0);
  ASSERT_TRUE(Healthy(port));
  // A first removal puts the test just after one of egressd's checks (the
  // one that binds the socket again, seen within 50 ms): the next is ~1 s
  // away, so the second removal below is looked at by /healthz before it.
  ASSERT_EQ(unlink(socket_path_.c_str()), 0);
  const std::string bound = " was removed; bound a new one there";
  ASSERT_TRUE(PollUntil([&] { return LogCount(bound) == 1; })) << DaemonLog();
  ASSERT_TRUE(Healthy(port));

  ASSERT_EQ(unlink(socket_path_.c_str()), 0);
  const bool unhealthy = Unhealthy(port);
  // Unless egressd's check came first (it would have bound the socket
  // again, logged after the store /healthz reads), /healthz said so.
  EXPECT_TRUE(unhealthy || LogCount(bound) == 2)
      << "/healthz said ok while the control socket was removed";
  EXPECT_TRUE(PollUntil([&] { return Pings(); }));
  EXPECT_TRUE(PollUntil([&] { return Healthy(port); }));
}

TEST_F(ControlSocketPathTest, PathTakenByAFileIsKeptAndHealthzSaysSo) {
  const int port = MetricsPort();
  ASSERT_GT(port, 0);
  ASSERT_TRUE(Healthy(port));
  const std::string file = Dir() + "/operator-file";
  { std::ofstream(file) << "not egressd's\n"; }
  RenameOverSocket(file);

  EXPECT_TRUE(PollUntil([&] { return Unhealthy(port); }))
      << "/healthz says ok while egressctl cannot reach egressd";
  const std::string line =
      absl::StrCat("control socket ", socket_path_, " is now a regular file");
  EXPECT_TRUE(PollUntil([&] { return LogCount(line) > 0; })) << DaemonLog();
  // Left as it is, however often egressd looks (every second).
  absl::SleepFor(absl::Milliseconds(2100));
  std::stringstream content;
  content << std::ifstream(socket_path_).rdbuf();
  EXPECT_EQ(content.str(), "not egressd's\n");
  EXPECT_EQ(LogCount(line), 1u) << DaemonLog();
  EXPECT_TRUE(Unhealthy(port));

  // Once it is gone, egressd is back at the path.
  ASSERT_EQ(unlink(socket_path_.c_str()), 0);
  EXPECT_TRUE(PollUntil([&] { return Pings(); }));
  EXPECT_TRUE(PollUntil([&] { return Healthy(port); }));
}

TEST_F(ControlSocketPathTest, AnotherSocketAtThePathIsNeitherTakenNorRemoved) {
  const int port = MetricsPort();
  ASSERT_GT(port, 0);
  // Another program's (or a new egressd's) listening socket.
  const std::string staged = Dir() + "/other.sock";
  UniqueFd other(
      socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", staged.c_str());
  ASSERT_EQ(bind(other.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(listen(other.get(), 8), 0);
  struct stat before;
  ASSERT_EQ(lstat(staged.c_str(), &before), 0);
  RenameOverSocket(staged);

  EXPECT_TRUE(PollUntil([&] { return Unhealthy(port); }));
  EXPECT_TRUE(PollUntil([&] {
    return LogCount(absl::StrCat("control socket ", socket_path_,
                                 " is now a socket this egressd did not "
                                 "bind")) > 0;
  })) << DaemonLog();
  // A client at the path reaches the other socket, not egressd.
  UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s",
                socket_path_.c_str());
  ASSERT_EQ(
      connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
      0);
  UniqueFd accepted(accept4(other.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted.valid()) << strerror(errno);

  // A stopping egressd removes only its own socket file.
  StopDaemon(SIGTERM);
  struct stat after;
  ASSERT_EQ(lstat(socket_path_.c_str(), &after), 0)
      << "egressd removed another program's socket when it stopped";
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(unlink(socket_path_.c_str()), 0);
}

}  // namespace
}  // namespace egress::testing
