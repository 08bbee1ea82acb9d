// A target's processes own their view of the filesystem: egressd reads
// their nsswitch.conf, nscd.conf and resolv.conf (for `status` and
// `verify`) without ever blocking on it. A FIFO there once froze egressd's
// loop (status, records, temporary rules, SIGTERM) until something wrote to
// it; now it answers at once and says it cannot tell.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "userspace/common/fs.h"
#include "userspace/control/control_socket.h"

namespace egress::testing {
namespace {

class HostileViewTest : public EgressdTest {};

TEST_F(HostileViewTest, StatusAnswersWhileATargetsNsswitchIsAFifo) {
  char dir[] = "/tmp/egress-fifo-view-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  const std::string fifo = root + "/etc/nsswitch.conf";
  absl::Cleanup remove = [root, fifo] {
    // A writer that comes and goes releases a reader blocked on the FIFO.
    const int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) close(fd);
    EXPECT_TRUE(RemoveTree(root).ok());
  };
  ASSERT_EQ(mkdir((root + "/etc").c_str(), 0755), 0);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  AddTarget("web");
  // A name rule: status looks at how the target's processes resolve.
  CtlOk({"allow", "443/tcp", "api.example.test"});
  const pid_t p = StartChrootedSleeper(cg_->path(), root, {});
  ASSERT_GT(p, 0);
  absl::Cleanup reap = [p] {
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  };
  const absl::Time start = absl::Now();
  absl::StatusOr<nlohmann::json> status =
      CallDaemon(socket_path_, {{"cmd", "status"}}, absl::Seconds(10));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(status.ok()) << status.status() << " after " << took;
  EXPECT_LT(took, absl::Seconds(5));
  const std::string text = status->dump();
  EXPECT_TRUE(absl::StrContains(text, "hides how it resolves")) << text;
  EXPECT_TRUE(absl::StrContains(text, "a FIFO")) << text;
  // And again: nothing was left waiting on the FIFO.
  EXPECT_TRUE(
      CallDaemon(socket_path_, {{"cmd", "ping"}}, absl::Seconds(5)).ok());
}

}  // namespace
}  // namespace egress::testing
