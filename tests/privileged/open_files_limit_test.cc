// egressd holds about 13 descriptors per target: it raises its soft limit of
// open files to the hard one at start, so that a service manager's default
// soft limit (1,024 under systemd) does not stop `target add` at about 72
// targets.
#include <signal.h>
#include <sys/resource.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"

namespace egress::testing {
namespace {

// The soft "Max open files" of process `pid` (0 if unreadable).
uint64_t SoftOpenFiles(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/limits"));
  for (std::string line; std::getline(in, line);) {
    if (!absl::StartsWith(line, "Max open files")) continue;
    std::vector<std::string> f = absl::StrSplit(
        line.substr(sizeof("Max open files") - 1), ' ', absl::SkipEmpty());
    uint64_t soft = 0;
    if (!f.empty() && absl::SimpleAtoi(f[0], &soft)) return soft;
  }
  return 0;
}

using OpenFilesLimitTest = EgressdTest;

TEST_F(OpenFilesLimitTest, TheSoftLimitIsRaisedToTheHardOne) {
  StopDaemon(SIGTERM);
  struct rlimit ours;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &ours), 0);
  ASSERT_GT(ours.rlim_max, 1024u) << "the hard limit leaves nothing to raise";
  // egressd inherits a soft limit of 1,024, as under systemd.
  struct rlimit low = {1024, ours.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  StartDaemon();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &ours), 0);
  EXPECT_EQ(SoftOpenFiles(daemon_pid_), ours.rlim_max);
  EXPECT_EQ(SoftOpenFiles(getpid()), ours.rlim_cur);
}

}  // namespace
}  // namespace egress::testing
