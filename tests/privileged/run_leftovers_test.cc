// `egressctl run` lifts enforcement only once nothing the command started
// is left: a process it leaves behind must never run unenforced.
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "userspace/common/mountinfo.h"

namespace egress::testing {
namespace {

class RunLeftoversTest : public EgressdTest {};

TEST_F(RunLeftoversTest, LeftoverSendsNothingAfterTheCommandExits) {
  auto allowed = UdpEchoServer::Create("127.0.0.1");
  auto denied = UdpEchoServer::Create("127.0.0.1");
  ASSERT_TRUE(allowed.ok() && denied.ok());
  const std::string allowed_port = std::to_string((*allowed)->port());
  const std::string started = state_dir_ + "/../leftover-started";
  // The command leaves a child behind that announces itself to the allowed
  // destination, then sends to one the run's policy denies in a tight loop
  // (bounded: 300000 datagrams or 3 s), ignoring EPERM while enforced.
  const std::string leftover = absl::StrCat(
      "import socket,time\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
      "s.sendto(b'up',('127.0.0.1',",
      allowed_port,
      "))\n"
      "open('",
      started,
      "','w').close()\n"
      "end=time.monotonic()+3\n"
      "n=0\n"
      "while n<300000 and time.monotonic()<end:\n"
      "  n+=1\n"
      "  try: s.sendto(b'x',('127.0.0.1',",
      (*denied)->port(),
      "))\n"
      "  except OSError: pass\n");
  // The command waits until its child runs (it marks a file; bounded: 10 s,
  // however slow python starts on a loaded machine), then exits.
  const std::string command =
      "python3 -c \"$LEFTOVER\" </dev/null >/dev/null 2>&1 & i=0; "
      "while [ ! -e \"$STARTED\" ] && [ $i -lt 200 ]; do sleep 0.05; "
      "i=$((i+1)); done";
  CommandResult r =
      Ctl({"run", "--allow", allowed_port + "/udp 127.0.0.1", "--target-name",
           "leftover", "--", "env", absl::StrCat("LEFTOVER=", leftover),
           absl::StrCat("STARTED=", started), "sh", "-c", command});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE((*allowed)->WaitForDatagrams(1)) << "the leftover did not run";
  // Anything that got out arrives within this wait.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ((*denied)->datagrams(), 0)
      << "a leftover of the command sent to a denied destination";
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_TRUE(targets["targets"].empty()) << targets.dump();
  auto root = Cgroup2Root();
  ASSERT_TRUE(root.ok()) << root.status();
  struct stat st;
  EXPECT_NE(stat((*root + "/egress.run/leftover").c_str(), &st), 0)
      << "the run's cgroup is left";
}

}  // namespace
}  // namespace egress::testing
