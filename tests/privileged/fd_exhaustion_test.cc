// egressd out of file descriptors (EMFILE): the control listener stays
// readable while accept fails, so the loop rests it instead of spinning,
// says so once, and serves again once descriptors are free. What is
// enforced stays as it was.
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/text_count.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

// Descriptors process `pid` has open.
int OpenFds(pid_t pid) {
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

// utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14, 15).
long CpuTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> f =
      absl::StrSplit(line.substr(close + 2), ' ', absl::SkipEmpty());
  if (f.size() < 13) return -1;
  return std::stol(f[11]) + std::stol(f[12]);
}

// A connection to `path` that sends nothing; invalid if connect failed.
UniqueFd Connect(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (!fd ||
      connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return UniqueFd();
  }
  return fd;
}

using FdExhaustionTest = EgressdTest;

TEST_F(FdExhaustionTest, AcceptRestsSaysSoOnceAndServesAgain) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  const int open = OpenFds(daemon_pid_);
  ASSERT_GT(open, 0);
  // Room for a few connections, then none.
  // The soft limit only: egressd's own, put back as it was below.
  struct rlimit was;
  ASSERT_EQ(prlimit(daemon_pid_, RLIMIT_NOFILE, nullptr, &was), 0);
  struct rlimit lim = {static_cast<rlim_t>(open) + 8, was.rlim_max};
  ASSERT_EQ(prlimit(daemon_pid_, RLIMIT_NOFILE, &lim, nullptr), 0)
      << strerror(errno);
  std::vector<UniqueFd> held;
  for (int i = 0; i < 64; ++i) {  // within the listen backlog (256)
    UniqueFd c = Connect(socket_path_);
    ASSERT_TRUE(c.valid()) << i << ": " << strerror(errno);
    held.push_back(std::move(c));
  }
  // A pending connection waits 5 s for its request: within that, egressd
  // has taken what it could and found no descriptor for the rest.
  const std::string said = "control socket: accept(";
  const absl::Time deadline = absl::Now() + absl::Seconds(4);
  while (absl::Now() < deadline && !absl::StrContains(DaemonLog(), said)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const long ticks_before = CpuTicks(daemon_pid_);
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(1));
  const long ticks = CpuTicks(daemon_pid_) - ticks_before;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  // Shown, not asserted (no timed assertions): a spinning loop is ~1.0.
  std::cerr << "egressd CPU while out of descriptors: "
            << static_cast<double>(ticks) / sysconf(_SC_CLK_TCK) / seconds
            << " of a core\n";
  std::string log = DaemonLog();
  EXPECT_EQ(CountOccurrences(log, said), 1u) << log;
  EXPECT_TRUE(absl::StrContains(log, "Too many open files")) << log;
  // Descriptors free again: the clients' connections close, and egressd
  // serves (each pending one is answered or dropped when it closes).
  held.clear();
  ASSERT_EQ(prlimit(daemon_pid_, RLIMIT_NOFILE, &was, nullptr), 0)
      << strerror(errno);
  CtlOk({"status"});
  EXPECT_TRUE(absl::StrContains(DaemonLog(),
                                "control socket: accepting requests again"))
      << DaemonLog();
  // Enforcement as it was: one program per hook, the rule in force.
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  // The reconciler's next pass (500 ms) finds every hook live again.
  nlohmann::json web;
  for (int i = 0; i < 100; ++i) {
    web = TargetStatus("web");
    if (web.value("hooks_attached", -1) == web.value("hooks_total", -2)) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(web.value("hooks_attached", -1), web.value("hooks_total", -2))
      << web.dump();
}

}  // namespace
}  // namespace egress::testing
