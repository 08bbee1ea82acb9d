// IPv4 options that do not route (no-ops, end of list, timestamps, router
// alert, record route) must reach an allowed destination: cgroup_skb/egress
// reads the options only as far as the header length says. Loose and strict
// source routes are still dropped, also behind harmless options.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"

namespace egress::testing {
namespace {

int Errno() { return errno; }

// A UDP socket bound to 127.0.0.1 on a source port whose bytes read as a
// malformed option (0x9c, length 0x41 > 40): a walk past the IP header into
// the UDP header would refuse the packet. -errno on failure.
int SocketOnTellingPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -Errno();
  for (uint16_t port = 40001; port <= 40010; ++port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return fd;
  }
  int e = Errno();
  close(fd);
  return -e;
}

// setsockopt(IP_OPTIONS, opts), then `count` datagrams to 127.0.0.1:port.
// 0, or the errno of the first failing step.
int SendWithOptions(const std::vector<uint8_t>& opts, uint16_t port,
                    int count) {
  int fd = SocketOnTellingPort();
  if (fd < 0) return -fd;
  int rc = 0;
  if (setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opts.data(), opts.size()) != 0)
    rc = Errno();
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; rc == 0 && i < count; ++i) {
    if (sendto(fd, "opt", 3, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) <
        0) {
      rc = Errno();
    }
  }
  close(fd);
  return rc;
}

// sendmsg() with the options as an IP_RETOPTS cmsg (past setsockopt).
int SendWithOptionsCmsg(const std::vector<uint8_t>& opts, uint16_t port) {
  int fd = SocketOnTellingPort();
  if (fd < 0) return -fd;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char cbuf[CMSG_SPACE(40)] = {};
  iovec iov{const_cast<char*>("opt"), 3};
  msghdr msg{};
  msg.msg_name = &to;
  msg.msg_namelen = sizeof(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = CMSG_SPACE(opts.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_RETOPTS;
  c->cmsg_len = CMSG_LEN(opts.size());
  std::memcpy(CMSG_DATA(c), opts.data(), opts.size());
  int rc = sendmsg(fd, &msg, 0) < 0 ? Errno() : 0;
  close(fd);
  return rc;
}

class IpOptionsTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto server = UdpEchoServer::Create("127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    AddTarget("web");
    CtlOk({"allow", absl::StrCat(server_->port(), "/udp"), "127.0.0.1"});
  }
  std::unique_ptr<UdpEchoServer> server_;
};

struct OptionCase {
  const char* name;
  std::vector<uint8_t> bytes;
};

TEST_F(IpOptionsTest, HarmlessOptionsReachAnAllowedDestination) {
  const OptionCase cases[] = {
      {"no-ops, end of list", {0x01, 0x01, 0x01, 0x00}},
      {"no-ops filling the header", {0x01, 0x01, 0x01, 0x01}},
      {"router alert", {0x94, 0x04, 0x00, 0x00}},
      {"timestamp", {0x44, 0x08, 0x05, 0x00, 0, 0, 0, 0}},
      {"no-ops and timestamp",
       {0x01, 0x01, 0x01, 0x01, 0x44, 0x0c, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0,
        0}},
      {"record route, end of list", {0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00}},
      {"router alert, no-ops, timestamp",
       {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x01, 0x44, 0x08, 0x05, 0x00,
        0, 0, 0, 0}},
  };
  constexpr int kPerCase = 3;
  int sent = 0;
  for (const OptionCase& c : cases) {
    SCOPED_TRACE(c.name);
    const uint16_t port = server_->port();
    int rc = InCgroup([&] { return SendWithOptions(c.bytes, port, kPerCase); });
    EXPECT_EQ(rc, 0) << strerror(rc);
    sent += kPerCase;
    EXPECT_TRUE(server_->WaitForDatagrams(sent))
        << server_->datagrams() << " of " << sent << " datagrams arrived";
  }
  EXPECT_EQ(Counters("web")["source_route_denied"], 0);
}

TEST_F(IpOptionsTest, SourceRouteBehindHarmlessOptionsIsDropped) {
  const uint16_t port = server_->port();
  // Timestamp, then a loose source route via 127.0.0.3 at the very end of
  // the header.
  const std::vector<uint8_t> lsrr = {0x44, 0x08, 0x05, 0x00, 0,   0, 0, 0,
                                     0x01, 0x83, 0x07, 0x04, 127, 0, 0, 3};
  std::vector<uint8_t> ssrr = lsrr;
  ssrr[9] = 0x89;
  EXPECT_EQ(InCgroup([&] { return SendWithOptionsCmsg(lsrr, port); }), EPERM);
  EXPECT_EQ(InCgroup([&] { return SendWithOptionsCmsg(ssrr, port); }), EPERM);
  EXPECT_EQ(Counters("web")["source_route_denied"], 2);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(server_->datagrams(), 0);
}

}  // namespace
}  // namespace egress::testing
