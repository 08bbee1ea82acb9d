// What egress must leave alone (connections the server accepts, and its
// replies on them) and what it must decide on a real network path: a test
// host in a network namespace behind a veth pair.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/netns.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class InboundTest : public EgressdTest {};

TEST_F(InboundTest, AcceptedTcpConnectionsAndRepliesUntouched) {
  AddTarget("web");  // no rules: every outbound attempt is denied
  constexpr uint16_t kPort = 40080;
  std::string reply;
  int client_rc = -1;
  std::thread client([&] {
    // Connect from outside the target to the server inside it, retrying
    // until the server listens (bounded).
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(kPort);
      to.sin_addr.s_addr = htonl(0x7f000002);
      if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
        const char msg[] = "GET / HTTP/1.0\r\n\r\n";
        send(fd, msg, sizeof(msg) - 1, 0);
        char buf[64];
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 2000) == 1) {
          ssize_t n = recv(fd, buf, sizeof(buf), 0);
          if (n > 0) reply.assign(buf, n);
        }
        client_rc = 0;
        close(fd);
        return;
      }
      close(fd);
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  auto server = RunInCgroupMulti(cg_->path(), [] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in me{};
    me.sin_family = AF_INET;
    me.sin_port = htons(kPort);
    me.sin_addr.s_addr = htonl(0x7f000002);
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0)
      return std::vector<int>{errno};
    listen(fd, 4);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return std::vector<int>{ETIMEDOUT};
    int c = accept(fd, nullptr, nullptr);
    char buf[64];
    recv(c, buf, sizeof(buf), 0);
    const char resp[] = "HTTP/1.0 200 OK\r\n\r\n";
    int sent = send(c, resp, sizeof(resp) - 1, 0) < 0 ? errno : 0;
    // While serving, an outbound attempt of the same process is refused.
    int outbound = TcpConnect("127.0.0.3", 40081);
    close(c);
    close(fd);
    return std::vector<int>{0, sent, outbound};
  });
  client.join();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(server->size(), 3u) << (*server)[0];
  EXPECT_EQ((*server)[1], 0) << "the reply on the accepted connection failed";
  EXPECT_EQ((*server)[2], EPERM);
  EXPECT_EQ(client_rc, 0);
  EXPECT_EQ(reply, "HTTP/1.0 200 OK\r\n\r\n");
}

TEST_F(InboundTest, NetnsHostAllowedAndDenied) {
  auto ns = TestNetns::Create("egress");
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto fd4 = (*ns)->BindSocketInNetns(SOCK_STREAM, (*ns)->ns_addr4(), 0);
  ASSERT_TRUE(fd4.ok()) << fd4.status();
  auto server4 = TcpListener::FromBoundSocket(*std::move(fd4));
  ASSERT_TRUE(server4.ok()) << server4.status();
  auto fd6 = (*ns)->BindSocketInNetns(SOCK_STREAM, (*ns)->ns_addr6(), 0);
  ASSERT_TRUE(fd6.ok()) << fd6.status();
  auto server6 = TcpListener::FromBoundSocket(*std::move(fd6));
  ASSERT_TRUE(server6.ok()) << server6.status();
  const std::string a4 = (*ns)->ns_addr4(), a6 = (*ns)->ns_addr6();
  const uint16_t p4 = (*server4)->port(), p6 = (*server6)->port();

  AddTarget("web");
  CtlOk({"allow", absl::StrCat(p4, "/tcp"), a4});
  CtlOk({"allow", absl::StrCat(p6, "/tcp"), a6});
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a4, p4); }), 0);
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a6, p6); }), 0);
  EXPECT_TRUE((*server4)->WaitForAccepted(1));
  EXPECT_TRUE((*server6)->WaitForAccepted(1));
  // Another port of the same host, and the host's other address family.
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a4, p4 + 1); }), EPERM);
  EXPECT_EQ(InCgroup([&] { return TcpConnect(a6, p4); }), EPERM);
  EXPECT_EQ(InCgroup([&] { return UdpSendto(a4, p4); }), EPERM);
  // Nothing denied reached the host.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ((*server4)->accepted(), 1);
  EXPECT_EQ((*server6)->accepted(), 1);
}

}  // namespace
}  // namespace egress::testing
