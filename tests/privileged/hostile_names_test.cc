// A process may name itself any bytes (prctl(PR_SET_NAME), /proc/PID/comm):
// egressd must keep running when such a name reaches its records, its
// learned state, `status` (the CAP_NET_RAW warning names the process) and
// `suggest`, and egressctl must print it.
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <fstream>

#include "absl/strings/match.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

// Not UTF-8: a lone continuation byte, a truncated sequence, an invalid lead.
constexpr char kBadName[] = "\x80web\xe2\x82\xff";

class HostileNamesTest : public EgressdTest {};

TEST_F(HostileNamesTest, NamesThatAreNotUtf8CrashNothing) {
  AddTarget("web", nullptr, "audit");
  // Audited (learned and recorded) under the bad name.
  EXPECT_EQ(InCgroup([] {
              prctl(PR_SET_NAME, kBadName);
              return TcpConnect("127.0.0.2", 40009);
            }),
            ECONNREFUSED);
  // A root process with CAP_NET_RAW under the bad name: `status` warns
  // about it by name.
  pid_t sleeper = StartSleeperInCgroup();
  ASSERT_GT(sleeper, 0);
  std::ofstream(absl::StrCat("/proc/", sleeper, "/comm")) << kBadName;

  CommandResult status = Ctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(absl::StrContains(status.output, "CAP_NET_RAW")) << status.output;
  CommandResult json = Ctl({"status", "-o", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  CommandResult events = Ctl({"events", "--last", "10", "-o", "json"});
  EXPECT_EQ(events.exit_code, 0) << events.output;
  EXPECT_TRUE(absl::StrContains(events.output, "40009")) << events.output;
  CommandResult suggest = Ctl({"suggest", "--target", "web"});
  EXPECT_EQ(suggest.exit_code, 0) << suggest.output;
  EXPECT_TRUE(absl::StrContains(suggest.output, "40009")) << suggest.output;
  kill(sleeper, SIGKILL);
  waitpid(sleeper, nullptr, 0);

  // Stopping saves the learned state (with the name): a clean exit, and a
  // restart reads it back.
  ASSERT_EQ(kill(daemon_pid_, SIGTERM), 0);
  int ws = 0;
  ASSERT_EQ(waitpid(daemon_pid_, &ws, 0), daemon_pid_);
  daemon_pid_ = -1;
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
      << "egressd ended with wait status " << ws;
  StartDaemon();
  suggest = Ctl({"suggest", "--target", "web"});
  EXPECT_EQ(suggest.exit_code, 0) << suggest.output;
  EXPECT_TRUE(absl::StrContains(suggest.output, "40009")) << suggest.output;
}

}  // namespace
}  // namespace egress::testing
