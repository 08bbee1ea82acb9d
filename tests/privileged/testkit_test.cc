// Self-test of the privileged test kit (tests/testing). No BPF is involved:
// this pins down what each probe returns on a machine WITHOUT enforcement, so
// enforcement tests can tell "denied" (EPERM) from the baseline.
//
// Baseline measured on the reference VM (Debian 12 userland, kernel 6.18,
// net.mptcp.enabled=1, net.ipv4.tcp_fastopen=1, kernel.io_uring_disabled=0,
// CONFIG_IPV6_MIP6 unset, net.ipv4.ping_group_range "1 0" by default):
//   TCP connect (v4, v6, v4-mapped, dual-stack, TFO x2, MPTCP, io_uring)
//     to a closed loopback port ............................ ECONNREFUSED
//   UDP sendto/connect+send/sendmmsg/io_uring sendmsg/from-v6-socket/
//     AF_UNSPEC to a closed loopback port ................... 0
//   RawSocket(AF_INET/AF_INET6), PacketSocket() as root ..... 0
//   PingSocket / PingSendto ... EACCES until EnsurePingAllowed(), then 0
//   IPV6_RTHDR setsockopt: type 0 EINVAL, type 2 EINVAL (needs
//     CONFIG_IPV6_MIP6), SRH (type 4) 0 -- no privilege needed
//   IPV6_RTHDR cmsg: EINVAL for every type (only type 2 is accepted, and only
//     with CONFIG_IPV6_MIP6)
//   IP_OPTIONS LSRR/SSRR setsockopt 0; IP_RETOPTS LSRR cmsg sendmsg 0
//   Source routing really diverts: a "loopback" datagram with an LSRR or SRH
//     hop leaves through the veth towards the hop.
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/command.h"
#include "tests/testing/file_util.h"
#include "tests/testing/listeners.h"
#include "tests/testing/netns.h"
#include "tests/testing/privileges.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"

namespace egress {
namespace testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string ErrName(int err) {
  if (err == 0) return "0";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : absl::StrCat(err);
}

// ---------------------------------------------------------------------------
// status_matchers.h (pure, but lives with the rest of the kit's tests)

TEST(TestkitStatusMatchersTest, MacrosAcceptStatusAndStatusOr) {
  ASSERT_OK(absl::OkStatus());
  EXPECT_OK(absl::StatusOr<int>(3));
  ASSERT_OK_AND_ASSIGN(int v, absl::StatusOr<int>(7));
  EXPECT_EQ(v, 7);
  ASSERT_OK_AND_ASSIGN(auto s, absl::StatusOr<std::string>("x"));
  EXPECT_EQ(s, "x");
  EXPECT_STATUS(absl::NotFoundError("no such cgroup"),
                absl::StatusCode::kNotFound, "cgroup");
  EXPECT_STATUS(absl::StatusOr<int>(absl::InternalError("boom")),
                absl::StatusCode::kInternal, "");
}

TEST(TestkitStatusMatchersTest, FailuresAreReported) {
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(absl::InternalError("boom")), "boom");
  EXPECT_NONFATAL_FAILURE(EXPECT_STATUS(absl::InternalError("boom"),
                                        absl::StatusCode::kNotFound, "boom"),
                          "NOT_FOUND");
  EXPECT_NONFATAL_FAILURE(EXPECT_STATUS(absl::NotFoundError("boom"),
                                        absl::StatusCode::kNotFound, "bang"),
                          "bang");
}

// ---------------------------------------------------------------------------

class TestkitPrivilegedTest : public ::testing::Test {
 protected:
  void SetUp() override { EGRESS_REQUIRE_ROOT(); }
};

using TestkitCgroupTest = TestkitPrivilegedTest;

TEST_F(TestkitCgroupTest, CreatesAndRemovesDirectories) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> cg,
                       TestCgroup::Create("kit"));
  EXPECT_TRUE(Exists(cg->path()));
  EXPECT_TRUE(Exists(cg->path() + "/cgroup.procs"));
  EXPECT_TRUE(absl::StartsWith(cg->relative_path(), "/egress-test-kit-"))
      << cg->relative_path();
  EXPECT_TRUE(absl::EndsWith(cg->path(), cg->relative_path())) << cg->path();
  struct stat st;
  ASSERT_EQ(::stat(cg->path().c_str(), &st), 0);
  EXPECT_EQ(cg->id(), st.st_ino);

  ASSERT_OK_AND_ASSIGN(TestCgroup * child, cg->CreateChild("inner"));
  EXPECT_EQ(child->path(), cg->path() + "/inner");
  EXPECT_EQ(child->relative_path(), cg->relative_path() + "/inner");
  ASSERT_OK_AND_ASSIGN(TestCgroup * grandchild, child->CreateChild("deeper"));
  EXPECT_TRUE(Exists(grandchild->path()));
  // A sub-cgroup the kit does not know about (as the code under test might
  // create) is removed too.
  std::string foreign = child->path() + "/foreign";
  ASSERT_EQ(::mkdir(foreign.c_str(), 0755), 0) << strerror(errno);

  std::string path = cg->path();
  ASSERT_OK(cg->Remove());
  EXPECT_FALSE(Exists(path));
  EXPECT_OK(cg->Remove());  // Idempotent.
}

TEST_F(TestkitCgroupTest, DestructorRemovesDirectory) {
  std::string path;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> cg,
                         TestCgroup::Create("kit"));
    path = cg->path();
    ASSERT_OK(cg->CreateChild("a").status());
  }
  EXPECT_FALSE(Exists(path));
}

TEST_F(TestkitCgroupTest, RejectsBadNames) {
  EXPECT_STATUS(TestCgroup::Create("a/b"), absl::StatusCode::kInvalidArgument,
                "a/b");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> cg,
                       TestCgroup::Create("kit"));
  EXPECT_STATUS(cg->CreateChild(".."), absl::StatusCode::kInvalidArgument,
                "..");
  EXPECT_STATUS(cg->CreateChild(""), absl::StatusCode::kInvalidArgument, "");
}

TEST_F(TestkitCgroupTest, RemoveKillsProcessesInTheSubtree) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> cg,
                       TestCgroup::Create("kit"));
  ASSERT_OK_AND_ASSIGN(TestCgroup * child, cg->CreateChild("busy"));
  std::string procs = child->path() + "/cgroup.procs";
  std::fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) {
    ::alarm(30);  // Safety net if the kit fails to kill us.
    int ok = WriteFile(procs, absl::StrCat(::getpid())).ok();
    while (ok) ::pause();
    ::_exit(1);
  }
  // Wait (bounded) until the child shows up in the cgroup.
  bool joined = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(5);
       !joined && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(5))) {
    absl::StatusOr<std::vector<int>> pids = child->Procs();
    joined = pids.ok() && pids->size() == 1 && (*pids)[0] == pid;
  }
  EXPECT_TRUE(joined);

  std::string path = cg->path();
  EXPECT_OK(cg->Remove());
  EXPECT_FALSE(Exists(path));
  ASSERT_OK_AND_ASSIGN(int ws,
                       WaitPidUntil(pid, absl::Now() + absl::Seconds(5)));
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) << ws;
}

// ---------------------------------------------------------------------------

class TestkitRunInCgroupTest : public TestkitPrivilegedTest {
 protected:
  void SetUp() override {
    TestkitPrivilegedTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<TestCgroup>> cg = TestCgroup::Create("run");
    ASSERT_OK(cg);
    cg_ = *std::move(cg);
  }
  std::unique_ptr<TestCgroup> cg_;
};

TEST_F(TestkitRunInCgroupTest, ChildRunsInTheTestCgroup) {
  const pid_t parent = ::getpid();
  const std::string want = absl::StrCat("0::", cg_->relative_path(), "\n");
  ASSERT_OK_AND_ASSIGN(
      std::vector<int> r, RunInCgroupMulti(cg_->path(), [&]() {
        absl::StatusOr<std::string> mine = ReadFile("/proc/self/cgroup");
        return std::vector<int>{mine.ok() && absl::StrContains(*mine, want),
                                ::getpid() != parent};
      }));
  EXPECT_EQ(r, (std::vector<int>{1, 1}));
  // The child is gone: the cgroup is empty again.
  ASSERT_OK_AND_ASSIGN(std::vector<int> procs, cg_->Procs());
  EXPECT_TRUE(procs.empty());
}

TEST_F(TestkitRunInCgroupTest, ReturnsTheValue) {
  ASSERT_OK_AND_ASSIGN(int v, RunInCgroup(cg_->path(), [] { return 42; }));
  EXPECT_EQ(v, 42);
  ASSERT_OK_AND_ASSIGN(std::vector<int> none, RunInCgroupMulti(cg_->path(), [] {
                         return std::vector<int>();
                       }));
  EXPECT_TRUE(none.empty());
  std::vector<int> many(5000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int>(i * 3);
  ASSERT_OK_AND_ASSIGN(std::vector<int> got,
                       RunInCgroupMulti(cg_->path(), [&] { return many; }));
  EXPECT_EQ(got, many);
}

TEST_F(TestkitRunInCgroupTest, TimeoutKillsTheChild) {
  EXPECT_STATUS(RunInCgroup(
                    cg_->path(),
                    [] {
                      ::sleep(30);
                      return 0;
                    },
                    absl::Milliseconds(300)),
                absl::StatusCode::kDeadlineExceeded, "did not report");
  // Killed, not waited out: nothing of the 30 s sleeper is left.
  ASSERT_OK_AND_ASSIGN(std::vector<int> procs, cg_->Procs());
  EXPECT_TRUE(procs.empty());
}

TEST_F(TestkitRunInCgroupTest, ChildDeathIsAnError) {
  EXPECT_STATUS(RunInCgroup(cg_->path(),
                            [] {
                              ::raise(SIGKILL);
                              return 0;
                            }),
                absl::StatusCode::kInternal, "killed by signal 9");
}

TEST_F(TestkitRunInCgroupTest, MissingCgroupIsAnError) {
  EXPECT_STATUS(RunInCgroup(cg_->path() + "/does-not-exist", [] { return 0; }),
                absl::StatusCode::kNotFound, "does-not-exist/cgroup.procs");
}

// A copy of RunCommand's pipe kept by another process does not hold the
// answer back: the command's exit ends the wait for its output. Here the
// copy is a heir of the command; in EventsTest it was a RunInCgroup child
// that another thread forked while the pipe was being handed over, and
// RunCommand waited for its EOF until that child ended, 9 s later.
TEST(TestkitCommandTest, TheCommandsExitEndsTheWaitForItsOutput) {
  absl::StatusOr<CommandResult> r = RunCommand(
      {"sh", "-c", "sleep 30 & echo $!; echo done"}, absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  int heir = 0;
  if (absl::SimpleAtoi(r->output.substr(0, r->output.find('\n')), &heir) &&
      heir > 0) {
    ::kill(heir, SIGKILL);
  }
  EXPECT_GT(heir, 0) << r->output;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(absl::EndsWith(r->output, "done\n")) << r->output;
}

// ---------------------------------------------------------------------------

TEST_F(TestkitPrivilegedTest, RequireRootSkipsOrFailsForOtherUsers) {
  EXPECT_OK(RequireRoot());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestCgroup> cg,
                       TestCgroup::Create("priv"));
  ASSERT_OK_AND_ASSIGN(std::vector<int> codes, RunInCgroupMulti(cg->path(), [] {
                         if (::setresgid(65534, 65534, 65534) != 0 ||
                             ::setresuid(65534, 65534, 65534) != 0) {
                           return std::vector<int>{-1, -1};
                         }
                         ::unsetenv("CI");
                         int without_ci =
                             static_cast<int>(RequireRoot().code());
                         ::setenv("CI", "true", 1);
                         int with_ci = static_cast<int>(RequireRoot().code());
                         return std::vector<int>{without_ci, with_ci};
                       }));
  EXPECT_EQ(codes, (std::vector<int>{
                       static_cast<int>(absl::StatusCode::kUnavailable),
                       static_cast<int>(absl::StatusCode::kPermissionDenied)}));
}

// ---------------------------------------------------------------------------

class TestkitProbesTest : public TestkitRunInCgroupTest {
 protected:
  void SetUp() override {
    TestkitRunInCgroupTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<ReservedPort>> tcp = ReservedPort::Create();
    ASSERT_OK(tcp);
    tcp_closed_ = *std::move(tcp);
    absl::StatusOr<std::unique_ptr<ReservedPort>> udp =
        ReservedPort::Create(SOCK_DGRAM);
    ASSERT_OK(udp);
    udp_port_ = *std::move(udp);
  }

  // Runs `fn` in the test cgroup; -1 if the kit itself failed.
  int InCgroup(std::function<int()> fn) {
    absl::StatusOr<int> r = RunInCgroup(cg_->path(), std::move(fn));
    EXPECT_OK(r);
    return r.ok() ? *r : -1;
  }

  std::unique_ptr<ReservedPort> tcp_closed_;
  std::unique_ptr<ReservedPort> udp_port_;  // Bound, so nobody else gets it.
};

TEST_F(TestkitProbesTest, TcpConnectToClosedLoopbackPortIsRefused) {
  uint16_t port = tcp_closed_->port();
  EXPECT_EQ(TcpConnect("127.0.0.1", port), ECONNREFUSED);
  EXPECT_EQ(InCgroup([&] { return TcpConnect("127.0.0.1", port); }),
            ECONNREFUSED);
}

TEST_F(TestkitProbesTest, TcpListenerAccepts) {
  for (const char* addr : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(addr);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TcpListener> listener,
                         TcpListener::Create(addr));
    uint16_t port = listener->port();
    EXPECT_NE(port, 0);
    EXPECT_EQ(InCgroup([&] { return TcpConnect(addr, port); }), 0);
    EXPECT_TRUE(listener->WaitForAccepted(1));
  }
  // A dual-stack listener on :: serves v4-mapped clients.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TcpListener> any,
                       TcpListener::Create("::"));
  uint16_t port = any->port();
  EXPECT_EQ(InCgroup([&] { return TcpConnectDualStack("127.0.0.1", port); }),
            0);
  EXPECT_EQ(InCgroup([&] { return IoUringConnect("127.0.0.1", port); }), 0);
  EXPECT_TRUE(any->WaitForAccepted(2));
}

TEST_F(TestkitProbesTest, UdpEchoServerReplies) {
  for (const char* addr : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(addr);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<UdpEchoServer> server,
                         UdpEchoServer::Create(addr));
    uint16_t port = server->port();
    EXPECT_EQ(UdpClientExpectReply(addr, port), 0);
    EXPECT_EQ(InCgroup([&] { return UdpClientExpectReply(addr, port); }), 0);
    EXPECT_TRUE(server->WaitForDatagrams(2));
  }
}

TEST_F(TestkitProbesTest, UdpClientWithoutServerTimesOut) {
  // udp_port_ is bound but never answers.
  uint16_t port = udp_port_->port();
  EXPECT_EQ(UdpClientExpectReply("127.0.0.1", port), ETIMEDOUT);
}

struct Baseline {
  std::string name;
  std::function<int()> probe;
  std::set<int> allowed;  // Acceptable results without enforcement.
  int measured;           // What the reference VM returns.
};

TEST_F(TestkitProbesTest, BaselineWithoutEnforcement) {
  const uint16_t tcp = tcp_closed_->port();
  const uint16_t udp = udp_port_->port();
  // Optional kernel features: the "unsupported" answers are acceptable.
  const std::set<int> kMptcp = {ECONNREFUSED, ENOPROTOOPT, EPROTONOSUPPORT};
  const std::set<int> kTfo = {ECONNREFUSED, EOPNOTSUPP};
  const std::set<int> kUring = {ECONNREFUSED, EPERM, ENOSYS};
  const std::set<int> kUringUdp = {0, EPERM, ENOSYS};
  const std::set<int> kRefused = {ECONNREFUSED};
  const std::set<int> kZero = {0};
  std::vector<Baseline> table = {
      {"TcpConnect 127.0.0.1", [=] { return TcpConnect("127.0.0.1", tcp); },
       kRefused, ECONNREFUSED},
      {"TcpConnect 127.0.0.2", [=] { return TcpConnect("127.0.0.2", tcp); },
       kRefused, ECONNREFUSED},
      {"TcpConnect ::1", [=] { return TcpConnect("::1", tcp); }, kRefused,
       ECONNREFUSED},
      {"TcpConnect ::ffff:127.0.0.1",
       [=] { return TcpConnect("::ffff:127.0.0.1", tcp); }, kRefused,
       ECONNREFUSED},
      {"TcpConnectDualStack",
       [=] { return TcpConnectDualStack("127.0.0.1", tcp); }, kRefused,
       ECONNREFUSED},
      {"TcpFastOpenSendto v4",
       [=] { return TcpFastOpenSendto("127.0.0.1", tcp); }, kTfo, ECONNREFUSED},
      {"TcpFastOpenSendto v6", [=] { return TcpFastOpenSendto("::1", tcp); },
       kTfo, ECONNREFUSED},
      {"TcpFastOpenConnectOpt v4",
       [=] { return TcpFastOpenConnectOpt("127.0.0.1", tcp); }, kTfo,
       ECONNREFUSED},
      {"TcpFastOpenConnectOpt v6",
       [=] { return TcpFastOpenConnectOpt("::1", tcp); }, kTfo, ECONNREFUSED},
      {"MptcpConnect v4", [=] { return MptcpConnect("127.0.0.1", tcp); },
       kMptcp, ECONNREFUSED},
      {"MptcpConnect v6", [=] { return MptcpConnect("::1", tcp); }, kMptcp,
       ECONNREFUSED},
      {"IoUringConnect v4", [=] { return IoUringConnect("127.0.0.1", tcp); },
       kUring, ECONNREFUSED},
      {"IoUringConnect v6", [=] { return IoUringConnect("::1", tcp); }, kUring,
       ECONNREFUSED},
      {"UdpSendto v4", [=] { return UdpSendto("127.0.0.1", udp); }, kZero, 0},
      {"UdpSendto v6", [=] { return UdpSendto("::1", udp); }, kZero, 0},
      {"UdpSendto v4-mapped",
       [=] { return UdpSendto("::ffff:127.0.0.1", udp); }, kZero, 0},
      {"UdpSendtoFromV6Socket",
       [=] { return UdpSendtoFromV6Socket(MakeSockaddrIn("127.0.0.1", udp)); },
       kZero, 0},
      {"UdpSendtoUnspec", [=] { return UdpSendtoUnspec("127.0.0.1", udp); },
       kZero, 0},
      {"UdpConnectThenSend v4",
       [=] { return UdpConnectThenSend("127.0.0.1", udp); }, kZero, 0},
      {"UdpConnectThenSend v6", [=] { return UdpConnectThenSend("::1", udp); },
       kZero, 0},
      {"UdpSendmmsg v4", [=] { return UdpSendmmsg("127.0.0.1", udp, 8); },
       kZero, 0},
      {"UdpSendmmsg v6", [=] { return UdpSendmmsg("::1", udp, 8); }, kZero, 0},
      {"IoUringUdpSendmsg v4",
       [=] { return IoUringUdpSendmsg("127.0.0.1", udp); }, kUringUdp, 0},
      {"IoUringUdpSendmsg v6", [=] { return IoUringUdpSendmsg("::1", udp); },
       kUringUdp, 0},
      {"RawSocket AF_INET", [] { return RawSocket(AF_INET); }, kZero, 0},
      {"RawSocket AF_INET6", [] { return RawSocket(AF_INET6); }, kZero, 0},
      {"PacketSocket", [] { return PacketSocket(); }, kZero, 0},
      {"Ipv6RoutingHeaderSetsockopt type 0",
       [] { return Ipv6RoutingHeaderSetsockopt(RoutingHeaderType::kType0); },
       {EINVAL},
       EINVAL},
      {"Ipv6RoutingHeaderSetsockopt type 2",
       [] { return Ipv6RoutingHeaderSetsockopt(RoutingHeaderType::kType2); },
       {0, EINVAL},
       EINVAL},
      {"Ipv6RoutingHeaderSetsockopt SRH",
       [] {
         return Ipv6RoutingHeaderSetsockopt(RoutingHeaderType::kSegmentRouting);
       },
       kZero, 0},
      {"Ipv6RoutingHeaderStickySend SRH",
       [=] { return Ipv6RoutingHeaderStickySend("::1", udp, "::1"); }, kZero,
       0},
      {"Ipv6RoutingHeaderCmsgSend type 2",
       [=] { return Ipv6RoutingHeaderCmsgSend("::1", udp, "::1"); },
       {0, EINVAL},
       EINVAL},
      {"Ipv6RoutingHeaderCmsgSend SRH",
       [=] {
         return Ipv6RoutingHeaderCmsgSend("::1", udp, "::1",
                                          RoutingHeaderType::kSegmentRouting);
       },
       {EINVAL},
       EINVAL},
      {"Ipv4SourceRouteSetsockopt LSRR",
       [] { return Ipv4SourceRouteSetsockopt(true); }, kZero, 0},
      {"Ipv4SourceRouteSetsockopt SSRR",
       [] { return Ipv4SourceRouteSetsockopt(false); }, kZero, 0},
      {"Ipv4SourceRouteStickySend",
       [=] { return Ipv4SourceRouteStickySend("127.0.0.1", udp, "127.0.0.2"); },
       kZero, 0},
      {"Ipv4SourceRouteCmsgSend",
       [=] { return Ipv4SourceRouteCmsgSend("127.0.0.1", udp, "127.0.0.2"); },
       kZero, 0},
  };
  int deviations = 0;
  for (const Baseline& b : table) {
    int got = InCgroup(b.probe);
    EXPECT_TRUE(b.allowed.count(got)) << b.name << " returned " << ErrName(got);
    if (got != b.measured) ++deviations;
    std::printf("  %-38s %-14s%s\n", b.name.c_str(), ErrName(got).c_str(),
                got == b.measured ? "" : "  (differs from the reference VM)");
  }
  if (deviations > 0) {
    std::printf(
        "  %d probe(s) differ from the reference VM: optional kernel "
        "features are off here\n",
        deviations);
  }
}

TEST_F(TestkitProbesTest, PingNeedsPingGroupRange) {
  ASSERT_OK_AND_ASSIGN(std::string previous, EnsurePingAllowed());
  int v4_socket = InCgroup([] { return PingSocket(AF_INET); });
  int v6_socket = InCgroup([] { return PingSocket(AF_INET6); });
  int v4_send = InCgroup([] { return PingSendto("127.0.0.1"); });
  int v6_send = InCgroup([] { return PingSendto("::1"); });
  // Narrow it to nobody ("1 0", the kernel default) to see the other side.
  ASSERT_OK(RestorePingGroupRange("1 0"));
  int v4_denied = InCgroup([] { return PingSocket(AF_INET); });
  int v6_denied = InCgroup([] { return PingSendto("::1"); });
  EXPECT_OK(RestorePingGroupRange(previous));
  EXPECT_EQ(v4_socket, 0);
  EXPECT_EQ(v6_socket, 0);
  EXPECT_EQ(v4_send, 0);
  EXPECT_EQ(v6_send, 0);
  EXPECT_EQ(v4_denied, EACCES);
  EXPECT_EQ(v6_denied, EACCES);
}

TEST_F(TestkitProbesTest, BadAddressIsEinval) {
  EXPECT_EQ(TcpConnect("not-an-address", 1), EINVAL);
  EXPECT_EQ(UdpSendtoUnspec("::1", 1), EINVAL);  // Needs IPv4.
  EXPECT_STATUS(ParseSockAddr("300.1.1.1", 1),
                absl::StatusCode::kInvalidArgument, "300.1.1.1");
}

// ---------------------------------------------------------------------------

class TestkitNetnsTest : public TestkitProbesTest {};

TEST_F(TestkitNetnsTest, CreatesAndRemovesNamespaceAndVeth) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestNetns> ns, TestNetns::Create("kit"));
  EXPECT_TRUE(Exists("/run/netns/" + ns->name()));
  EXPECT_NE(::if_nametoindex(ns->host_ifname().c_str()), 0u);
  EXPECT_EQ(::if_nametoindex(ns->ns_ifname().c_str()), 0u);  // Not in root.
  ASSERT_OK_AND_ASSIGN(CommandResult links, ns->RunInNetns("ip -o link show"));
  EXPECT_EQ(links.exit_code, 0) << links.output;
  EXPECT_TRUE(absl::StrContains(links.output, ns->ns_ifname())) << links.output;
  EXPECT_FALSE(absl::StrContains(links.output, ns->host_ifname()));
  // Addresses are in 198.18.0.0/15 and fd65:6774::/32.
  in_addr a4;
  ASSERT_EQ(::inet_pton(AF_INET, ns->ns_addr4().c_str(), &a4), 1);
  EXPECT_EQ(ntohl(a4.s_addr) & 0xfffe0000u, 0xc6120000u) << ns->ns_addr4();
  EXPECT_TRUE(absl::StartsWith(ns->ns_addr6(), "fd65:6774:"));

  std::string name = ns->name(), host_if = ns->host_ifname();
  ASSERT_OK(ns->Remove());
  EXPECT_FALSE(Exists("/run/netns/" + name));
  EXPECT_EQ(::if_nametoindex(host_if.c_str()), 0u);
  EXPECT_OK(ns->Remove());
}

TEST_F(TestkitNetnsTest, ReachableOverVeth) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestNetns> ns, TestNetns::Create("kit"));
  const std::string a4 = ns->ns_addr4(), a6 = ns->ns_addr6();
  const uint16_t closed = tcp_closed_->port();  // Nothing listens in the ns.
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a4, closed); }), ECONNREFUSED);
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a6, closed); }), ECONNREFUSED);

  // Servers inside the namespace.
  ASSERT_OK_AND_ASSIGN(UniqueFd tcp_fd,
                       ns->BindSocketInNetns(SOCK_STREAM, a4, 0));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TcpListener> listener,
                       TcpListener::FromBoundSocket(std::move(tcp_fd)));
  uint16_t tcp_port = listener->port();
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a4, tcp_port); }), 0);
  EXPECT_TRUE(listener->WaitForAccepted(1));

  ASSERT_OK_AND_ASSIGN(UniqueFd udp_fd,
                       ns->BindSocketInNetns(SOCK_DGRAM, a6, 0));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<UdpEchoServer> echo,
                       UdpEchoServer::FromBoundSocket(std::move(udp_fd)));
  uint16_t udp_port = echo->port();
  EXPECT_EQ(InCgroup([&] { return UdpClientExpectReply(a6, udp_port); }), 0);
  EXPECT_TRUE(echo->WaitForDatagrams(1));
}

// Source-routing options change where a "loopback" datagram goes: the packet
// leaves through the veth towards the hop. The veth's tx counter shows it.
TEST_F(TestkitNetnsTest, SourceRoutingDivertsToTheHop) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestNetns> ns, TestNetns::Create("kit"));
  const std::string tx_file = absl::StrCat("/sys/class/net/", ns->host_ifname(),
                                           "/statistics/tx_packets");
  auto tx = [&]() -> int64_t {
    absl::StatusOr<std::string> text = ReadFile(tx_file);
    int64_t n = -1;
    if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &n))
      ADD_FAILURE() << "read " << tx_file << ": " << text.status();
    return n;
  };
  const uint16_t udp = udp_port_->port();
  const std::string hop4 = ns->ns_addr4(), hop6 = ns->ns_addr6();
  constexpr int kSends = 5;
  struct Case {
    const char* name;
    std::function<int()> send;
  };
  std::vector<Case> cases = {
      {"LSRR setsockopt",
       [&] { return Ipv4SourceRouteStickySend("127.0.0.1", udp, hop4); }},
      {"LSRR cmsg",
       [&] { return Ipv4SourceRouteCmsgSend("127.0.0.1", udp, hop4); }},
      {"SRH setsockopt",
       [&] { return Ipv6RoutingHeaderStickySend("::1", udp, hop6); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    int64_t before = tx();
    ASSERT_OK_AND_ASSIGN(std::vector<int> results,
                         RunInCgroupMulti(cg_->path(), [&] {
                           std::vector<int> r;
                           for (int i = 0; i < kSends; ++i) {
                             r.push_back(c.send());
                           }
                           return r;
                         }));
    EXPECT_EQ(results, std::vector<int>(kSends, 0));
    // ARP/ND may add a packet or two; the datagrams themselves must be there.
    EXPECT_GE(tx() - before, kSends);
  }
}

}  // namespace
}  // namespace testing
}  // namespace egress
