// `egressctl run --user`: the command runs as that user with no
// capabilities, so it cannot move itself out of its cgroup (and its
// policy); under sudo it runs as sudo's caller; left root, egressctl warns.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "userspace/common/mountinfo.h"

namespace egress::testing {
namespace {

class RunUserTest : public EgressdTest {
 protected:
  void SetUp() override {
    // sudo's variables of whoever runs the tests must not pick the user.
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    EgressdTest::SetUp();
  }
  void TearDown() override {
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    EgressdTest::TearDown();
  }

  CommandResult Run(std::vector<std::string> options,
                    const std::string& script) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    for (const char* a : {"--", "sh", "-c"}) args.push_back(a);
    args.push_back(script);
    return Ctl(args);
  }
};

TEST_F(RunUserTest, CommandAsAnotherUserCannotLeaveItsCgroup) {
  absl::StatusOr<std::string> root = Cgroup2Root();
  ASSERT_TRUE(root.ok()) << root.status();
  const CommandResult r =
      Run({"--user", "65534"},
          absl::StrCat("id -u; id -g; echo $$ > ", *root,
                       "/cgroup.procs && echo moved || echo stayed; "
                       "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' "
                       "/proc/self/status"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "65534\n65534\n")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "Permission denied")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "stayed")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "moved")) << r.output;
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_TRUE(
        absl::StrContains(r.output, absl::StrCat(cap, ":\t0000000000000000")))
        << cap << ": " << r.output;
  }
  EXPECT_TRUE(absl::StrContains(r.output, "NoNewPrivs:\t1")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "warning")) << r.output;
}

TEST_F(RunUserTest, SudoCallerIsTheDefaultUser) {
  setenv("SUDO_UID", "65534", 1);
  setenv("SUDO_GID", "65534", 1);
  const CommandResult r = Run({}, "id -u; id -g");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "65534\n65534\n")) << r.output;
  // --user wins over sudo's caller.
  const CommandResult root = Run({"--user", "0"}, "id -u");
  EXPECT_EQ(root.exit_code, 0) << root.output;
  EXPECT_TRUE(absl::StrContains(root.output, "0\n")) << root.output;
}

TEST_F(RunUserTest, RootWithoutUserIsWarnedOnce) {
  const CommandResult r = Run({}, "id -u");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "egressctl run: warning: the command runs as root"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "--user USER")) << r.output;
  const CommandResult bad = Run({"--user", "no-such-user-here"}, "true");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(absl::StrContains(bad.output, "no user 'no-such-user-here'"))
      << bad.output;
}

// The result a probe printed for `name` ("" when it printed none).
std::string ResultOf(const std::string& output, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (words.size() == 2 && words[0] == name) return words[1];
  }
  return "";
}

#if defined(__x86_64__)
// The fd number the helper outside the run keeps its socket at.
constexpr int kHelperSocketFd = 100;

// The audit's socket theft: a process of the run's uid outside the run (so
// outside its cgroup) holds a socket, whose hooks are that cgroup's, none.
// From inside `run --user`, attaching to it, writing its memory and copying
// its socket out (pidfd_getfd) must all fail, and nothing reaches the
// listener through the socket.
TEST_F(RunUserTest, OutsideProcessOfTheSameUserCannotBeTracedOrRobbed) {
  absl::StatusOr<UniqueFd> listener = BindSocket(SOCK_STREAM, "127.0.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_EQ(listen(listener->get(), 8), 0);
  absl::StatusOr<uint16_t> port = LocalPort(listener->get());
  ASSERT_TRUE(port.ok()) << port.status();

  int ready[2], hold[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    // Only system calls here: the test process may have threads.
    close(ready[0]);
    close(hold[1]);
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    const bool ok = s >= 0 && dup2(s, kHelperSocketFd) == kHelperSocketFd &&
                    syscall(SYS_setgroups, 0, nullptr) == 0 &&
                    syscall(SYS_setresgid, 65534, 65534, 65534) == 0 &&
                    syscall(SYS_setresuid, 65534, 65534, 65534) == 0 &&
                    // A plain process of that uid is dumpable; setuid()
                    // from root left this one not.
                    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0;
    char c = ok ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    // Until the test closes its end (or kills it).
    while (read(hold[0], &c, 1) < 0) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  absl::Cleanup stop_helper = [helper, hold_end = hold[1]] {
    close(hold_end);
    kill(helper, SIGKILL);
    waitpid(helper, nullptr, 0);
  };
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, 'y') << "the helper could not become uid 65534";

  const std::string probe = absl::StrCat(
      "import ctypes, errno, os, socket\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "libc.syscall.restype = ctypes.c_long\n"
      "def name(e): return errno.errorcode.get(e, '?')\n"
      "def sys(nr, *args):\n"  // syscall() reads longs
      "  args = [ctypes.c_long(a) if isinstance(a, int) else a for a in "
      "args]\n"
      "  if libc.syscall(ctypes.c_long(nr), *args) >= 0: return 'ok'\n"
      "  return name(ctypes.get_errno())\n"
      "def r(f):\n"
      "  try: f(); return 'ok'\n"
      "  except OSError as e: return name(e.errno)\n"
      "pid = ",
      helper,
      "\n"
      "print('attach', sys(101, 16, pid, 0, 0))\n"     // PTRACE_ATTACH
      "print('seize', sys(101, 0x4206, pid, 0, 0))\n"  // PTRACE_SEIZE
      "buf = ctypes.create_string_buffer(8)\n"
      "iov = (ctypes.c_size_t * 2)(ctypes.addressof(buf), 8)\n"
      "print('vm_writev', sys(311, pid, iov, 1, iov, 1, 0))\n"
      "print('mem', r(lambda: os.close(os.open('/proc/%d/mem' % pid, "
      "os.O_WRONLY))))\n"
      "pidfd = os.pidfd_open(pid)\n"
      "fd = libc.syscall(ctypes.c_long(438), ctypes.c_long(pidfd), "
      "ctypes.c_long(",
      kHelperSocketFd,
      "), ctypes.c_long(0))\n"  // pidfd_getfd
      "print('getfd', 'ok' if fd >= 0 else name(ctypes.get_errno()))\n"
      "if fd >= 0:\n"
      "  s = socket.socket(fileno=fd)\n"
      "  print('connect', r(lambda: s.connect(('127.0.0.1', ",
      *port, "))))\n");
  const CommandResult r =
      Ctl({"run", "--user", "65534", "--", "python3", "-c", probe});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ResultOf(r.output, "attach"), "EPERM") << r.output;
  EXPECT_EQ(ResultOf(r.output, "seize"), "EPERM") << r.output;
  EXPECT_EQ(ResultOf(r.output, "vm_writev"), "EPERM") << r.output;
  // mm_access() answers EACCES when the ptrace check refuses.
  EXPECT_EQ(ResultOf(r.output, "mem"), "EACCES") << r.output;
  EXPECT_EQ(ResultOf(r.output, "getfd"), "EPERM") << r.output;
  EXPECT_EQ(ResultOf(r.output, "connect"), "") << r.output;
  // A TCP connect() returns once the handshake is done, so a connection
  // that got through is queued by the time `run` has exited.
  ASSERT_EQ(fcntl(listener->get(), F_SETFL, O_NONBLOCK), 0);
  const int accepted = accept(listener->get(), nullptr, nullptr);
  const int accept_errno = errno;
  if (accepted >= 0) close(accepted);
  EXPECT_LT(accepted, 0) << "the stolen socket connected: " << r.output;
  EXPECT_EQ(accept_errno, EAGAIN);
}
#endif

}  // namespace
}  // namespace egress::testing
