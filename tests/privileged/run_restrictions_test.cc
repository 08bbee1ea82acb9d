// `egressctl run` refuses its command socket families outside the allowed
// list, new user namespaces and io_uring: the call fails inside the command
// (EAFNOSUPPORT or EPERM) and egressctl says on stderr what it refused and
// which option allows it. The overrides let each through.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"

namespace egress::testing {
namespace {

// A python3 probe: each line of `body` prints "NAME RESULT", RESULT being
// "ok" or the errno's name.
std::string Probe(const std::string& body) {
  return absl::StrCat(
      "import socket, errno, ctypes\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "def r(f):\n"
      "  try: f(); return 'ok'\n"
      "  except OSError as e: return errno.errorcode.get(e.errno, '?')\n"
      "def sock(fam, typ):\n"
      "  return r(lambda: socket.socket(fam, typ, 0).close())\n"
      "def sys(nr, *args):\n"
      "  if libc.syscall(nr, *args) >= 0: return 'ok'\n"
      "  return errno.errorcode.get(ctypes.get_errno(), '?')\n",
      body);
}

// Every family the tests try, with the type it supports.
const std::string kFamilies = Probe(
    "print('packet', sock(socket.AF_PACKET, socket.SOCK_RAW))\n"
    "print('vsock', sock(socket.AF_VSOCK, socket.SOCK_STREAM))\n"
    "print('xdp', sock(44, socket.SOCK_RAW))\n"  // AF_XDP
    "print('inet', sock(socket.AF_INET, socket.SOCK_STREAM))\n"
    "print('inet6', sock(socket.AF_INET6, socket.SOCK_DGRAM))\n"
    "print('netlink', sock(socket.AF_NETLINK, socket.SOCK_RAW))\n"
    "print('unix', r(lambda: [s.close() for s in socket.socketpair()]))\n");

// x86-64 system call numbers, for the raw calls below.
#if defined(__x86_64__)
const std::string kIoUringSetup =
    Probe("print('io_uring', sys(425, 4, ctypes.create_string_buffer(120)))\n");
#endif

class RunRestrictionsTest : public EgressdTest {
 protected:
  // `egressctl run [options] -- argv`, under a target that allows nothing.
  CommandResult Run(std::vector<std::string> options,
                    const std::vector<std::string>& argv) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
    return Ctl(args);
  }

  CommandResult RunPython(std::vector<std::string> options,
                          const std::string& script) {
    return Run(std::move(options), {"python3", "-c", script});
  }
};

// The result a probe printed for `name` ("" when it printed none).
std::string ResultOf(const CommandResult& r, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (words.size() == 2 && words[0] == name) return words[1];
  }
  return "";
}

bool Says(const CommandResult& r, const std::string& text) {
  return absl::StrContains(r.output, text);
}

TEST_F(RunRestrictionsTest, OtherFamiliesRefusedWithTheReason) {
  CommandResult r = RunPython({}, kFamilies);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* refused : {"packet", "vsock", "xdp"}) {
    EXPECT_EQ(ResultOf(r, refused), "EAFNOSUPPORT") << refused << r.output;
  }
  for (const char* allowed : {"inet", "inet6", "netlink", "unix"}) {
    EXPECT_EQ(ResultOf(r, allowed), "ok") << allowed << r.output;
  }
  EXPECT_TRUE(Says(r, "egressctl run: refused socket(AF_PACKET) by pid "))
      << r.output;
  EXPECT_TRUE(Says(r,
                   "(python3): family not allowed; --allow-family packet "
                   "allows it"))
      << r.output;
  EXPECT_TRUE(Says(r, "refused socket(AF_VSOCK)")) << r.output;
  EXPECT_TRUE(Says(r, "--allow-family vsock allows it")) << r.output;
  EXPECT_TRUE(Says(r, "refused socket(AF_XDP)")) << r.output;
}

TEST_F(RunRestrictionsTest, AllowFamilyAndAnyFamilyLetThemThrough) {
  CommandResult some =
      RunPython({"--allow-family", "packet,AF_VSOCK"}, kFamilies);
  ASSERT_EQ(some.exit_code, 0) << some.output;
  EXPECT_EQ(ResultOf(some, "packet"), "ok") << some.output;
  EXPECT_EQ(ResultOf(some, "vsock"), "ok") << some.output;
  EXPECT_EQ(ResultOf(some, "xdp"), "EAFNOSUPPORT") << some.output;
  EXPECT_EQ(ResultOf(some, "inet"), "ok") << some.output;

  CommandResult any = RunPython({"--any-family"}, kFamilies);
  ASSERT_EQ(any.exit_code, 0) << any.output;
  for (const char* family :
       {"packet", "vsock", "xdp", "inet", "inet6", "netlink", "unix"}) {
    EXPECT_EQ(ResultOf(any, family), "ok") << family << any.output;
  }
  EXPECT_FALSE(Says(any, "refused")) << any.output;
}

TEST_F(RunRestrictionsTest, FamiliesOf32BitProcessesRefusedThroughSocketcall) {
#ifndef EGRESS_FAMILIES32_HELPER_PATH
  GTEST_SKIP() << "no 32-bit toolchain for this architecture (gcc-multilib "
                  "on amd64)";
#else
  // i386 glibc has no socket() system call of its own: socketcall() only.
  CommandResult r = Run({}, {EGRESS_FAMILIES32_HELPER_PATH, "17", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ResultOf(r, "socket(17)"), "EAFNOSUPPORT") << r.output;
  EXPECT_EQ(ResultOf(r, "socket(2)"), "ok") << r.output;
  EXPECT_EQ(ResultOf(r, "socketpair"), "ok") << r.output;
  EXPECT_TRUE(Says(r, "refused socket(AF_PACKET) by pid ")) << r.output;
  EXPECT_TRUE(Says(r, "--allow-family packet allows it")) << r.output;

  CommandResult allowed =
      Run({"--allow-family", "packet"}, {EGRESS_FAMILIES32_HELPER_PATH, "17"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_EQ(ResultOf(allowed, "socket(17)"), "ok") << allowed.output;
#endif
}

TEST_F(RunRestrictionsTest, NewUserNamespaceRefusedWithTheReason) {
  // util-linux unshare(1): unshare(CLONE_NEWUSER).
  CommandResult r = Run({}, {"unshare", "-U", "true"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Says(r, "Operation not permitted")) << r.output;
  EXPECT_TRUE(Says(r, "egressctl run: refused unshare(CLONE_NEWUSER) by pid "))
      << r.output;
  EXPECT_TRUE(Says(r,
                   "(unshare): new user namespaces are not allowed; "
                   "--allow-userns allows it"))
      << r.output;

  CommandResult allowed = Run({"--allow-userns"}, {"unshare", "-U", "true"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_FALSE(Says(allowed, "refused")) << allowed.output;
}

#if defined(__x86_64__)
TEST_F(RunRestrictionsTest, CloneIntoUserNamespaceRefusedAndClone3Unsupported) {
  // clone(CLONE_NEWUSER | SIGCHLD) is refused (so no child is made);
  // clone3() fails with ENOSYS; threads and posix_spawn still work (glibc
  // falls back from clone3 to clone).
  CommandResult r = RunPython(
      {},
      Probe("import os, threading\n"
            "print('clone', sys(56, 0x10000000 | 17, 0, 0, 0, 0))\n"
            "print('clone3', sys(435, 0, 0))\n"
            "t = threading.Thread(target=lambda: None); t.start(); "
            "t.join()\n"
            "p = os.posix_spawnp('true', ['true'], {})\n"
            "print('spawn', 'ok' if os.waitpid(p, 0)[1] == 0 else 'bad')\n"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ResultOf(r, "clone"), "EPERM") << r.output;
  EXPECT_EQ(ResultOf(r, "clone3"), "ENOSYS") << r.output;
  EXPECT_EQ(ResultOf(r, "spawn"), "ok") << r.output;
  EXPECT_TRUE(Says(r, "refused clone(CLONE_NEWUSER) by pid ")) << r.output;
}

TEST_F(RunRestrictionsTest, IoUringRefusedWhileFamiliesAreRestricted) {
  CommandResult r = RunPython({}, kIoUringSetup);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ResultOf(r, "io_uring"), "EPERM") << r.output;
  EXPECT_TRUE(Says(r, "egressctl run: refused io_uring_setup by pid "))
      << r.output;
  EXPECT_TRUE(Says(r, "--allow-io-uring allows it")) << r.output;

  for (const char* option : {"--allow-io-uring", "--any-family"}) {
    CommandResult allowed = RunPython({option}, kIoUringSetup);
    ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
    EXPECT_EQ(ResultOf(allowed, "io_uring"), "ok") << option << allowed.output;
  }
}
#endif

}  // namespace
}  // namespace egress::testing
