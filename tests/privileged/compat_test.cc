// 32-bit (compat) syscalls skip the cgroup/setsockopt program: the kernel
// runs it only on the native path. A compat process can therefore set
// IP_OPTIONS with LSRR or IPV6_RTHDR; cgroup_skb/egress is then the only line,
// and it must drop every such packet before it reaches the host it routes
// through.
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/command.h"
#include "tests/testing/listeners.h"
#include "tests/testing/netns.h"

namespace egress::testing {
namespace {

constexpr int kDatagrams = 5;
// The helper's exit status when setsockopt() refused: this plus errno.
constexpr int kSetsockoptFailed = 64;

class CompatSyscallTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
#ifndef EGRESS_COMPAT32_HELPER_PATH
    GTEST_SKIP() << "no 32-bit toolchain for this architecture (gcc-multilib "
                    "on amd64, see scripts/install_deps.sh)";
#else
    auto ns = TestNetns::Create("compat");
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_ = std::move(*ns);
    // The test host accepts source-routed packets addressed to it, so that
    // one that escapes is seen by the listener.
    auto sysctl = ns_->RunInNetns(
        "for f in all " + ns_->ns_ifname() +
        "; do echo 1 > /proc/sys/net/ipv4/conf/$f/accept_source_route; "
        "echo 1 > /proc/sys/net/ipv6/conf/$f/seg6_enabled; done");
    ASSERT_TRUE(sysctl.ok() && sysctl->exit_code == 0)
        << (sysctl.ok() ? sysctl->output : sysctl.status().ToString());
    AddTarget("web");
    CtlOk({"allow", "any", ns_->ns_addr4()});
    CtlOk({"allow", "any", ns_->ns_addr6()});
#endif
  }

  // A UDP listener on the test host's address.
  std::unique_ptr<UdpEchoServer> Listen(const std::string& addr) {
    auto fd = ns_->BindSocketInNetns(SOCK_DGRAM, addr, 0);
    if (!fd.ok()) {
      ADD_FAILURE() << fd.status();
      return nullptr;
    }
    auto server = UdpEchoServer::FromBoundSocket(std::move(*fd));
    if (!server.ok()) {
      ADD_FAILURE() << server.status();
      return nullptr;
    }
    return std::move(*server);
  }

  // The helper's argv: source route through the test host to the test host.
  std::vector<std::string> HelperArgv(const std::string& mode,
                                      const std::string& addr, uint16_t port) {
#ifdef EGRESS_COMPAT32_HELPER_PATH
    return {EGRESS_COMPAT32_HELPER_PATH, mode, addr,
            std::to_string(port),        addr, std::to_string(kDatagrams)};
#else
    return {};
#endif
  }

  // Runs the helper in the test cgroup; its exit status.
  int RunHelperInCgroup(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    return InCgroup([&argv] {
      pid_t pid = fork();
      if (pid == 0) {
        execv(argv[0], argv.data());
        _exit(127);
      }
      int status = 0;
      if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
      return ExitCodeFromWaitStatus(status);
    });
  }

  void ExpectOnlyThePacketHookStopsIt(const std::string& mode,
                                      const std::string& addr) {
    auto sink = Listen(addr);
    ASSERT_NE(sink, nullptr);
    std::vector<std::string> argv = HelperArgv(mode, addr, sink->port());
    // Outside the target the source-routed datagrams reach the test host:
    // the route works, so a drop inside is the hook's doing.
    auto outside = RunCommand(argv);
    ASSERT_TRUE(outside.ok()) << outside.status();
    ASSERT_EQ(outside->exit_code, 0) << outside->output;
    ASSERT_TRUE(sink->WaitForDatagrams(kDatagrams)) << sink->datagrams();
    const int before = sink->datagrams();

    // Inside: the compat setsockopt is accepted (no hook runs for it), the
    // packet is dropped on its way out, so sendto() fails.
    int inside = RunHelperInCgroup(argv);
    EXPECT_NE(inside, kSetsockoptFailed + EPERM)
        << "the kernel now runs cgroup/setsockopt for compat calls: update "
           "docs/bypasses.md (section 5)";
    EXPECT_EQ(inside, EPERM);
    EXPECT_FALSE(sink->WaitForDatagrams(before + 1, absl::Milliseconds(500)));
    EXPECT_EQ(sink->datagrams(), before) << "a source-routed packet got out";
    EXPECT_GE(Counters("web")["source_route_denied"], 1);
  }

  std::unique_ptr<TestNetns> ns_;
};

TEST_F(CompatSyscallTest, Ipv4LsrrFromCompatProcessNeverLeaves) {
  ExpectOnlyThePacketHookStopsIt("lsrr", ns_->ns_addr4());
}

TEST_F(CompatSyscallTest, Ipv6RoutingHeaderFromCompatProcessNeverLeaves) {
  ExpectOnlyThePacketHookStopsIt("rthdr", ns_->ns_addr6());
}

}  // namespace
}  // namespace egress::testing
