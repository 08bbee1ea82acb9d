// The sock_diag layer against the running kernel, without egressd: a dump
// finds a loopback connection with its inode and the cgroup id of the
// process that made it (INET_DIAG_CGROUP_ID), connected UDP sockets are
// dumped as established and unconnected ones are not, and SOCK_DESTROY of
// a dumped socket resets the peer, after which the same socket is NotFound.
#include "userspace/kernel/sock_diag.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "gtest/gtest.h"
#include "tests/testing/held_connections.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/mountinfo.h"
#include "userspace/kernel/cgroup.h"

namespace egress::testing {
namespace {

constexpr uint32_t kEstablished = 1u << TCP_ESTABLISHED;

uint16_t LocalPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

// A socket of `type` connected to [address]:port.
UniqueFd Connected(const std::string& address, uint16_t port, int type) {
  absl::StatusOr<SockAddr> a = ParseSockAddr(address, port);
  EXPECT_TRUE(a.ok()) << a.status();
  UniqueFd fd(socket(a->family(), type | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(fd.get(), a->get(), a->len), 0) << strerror(errno);
  return fd;
}

// The dumped socket with local port `port` (nullopt when none).
std::optional<DiagSocket> Find(int family, int protocol, uint32_t states,
                               uint16_t port) {
  absl::StatusOr<SockDiag> diag = SockDiag::Open();
  EXPECT_TRUE(diag.ok()) << diag.status();
  absl::StatusOr<SocketDump> dump =
      diag->Dump(static_cast<uint8_t>(family), static_cast<uint8_t>(protocol),
                 states, 65536);
  EXPECT_TRUE(dump.ok()) << dump.status();
  if (!dump.ok()) return std::nullopt;
  EXPECT_FALSE(dump->truncated);
  for (const DiagSocket& s : dump->sockets) {
    if (s.source_port() == port) return s;
  }
  return std::nullopt;
}

uint64_t OwnCgroupId() {
  absl::StatusOr<std::string> root = Cgroup2Root();
  absl::StatusOr<std::string> rel = CgroupOfPid(getpid());
  EXPECT_TRUE(root.ok() && rel.ok());
  absl::StatusOr<uint64_t> id = CgroupId(*rel == "/" ? *root : *root + *rel);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.value_or(0);
}

TEST(SockDiagTest, DumpsTcpWithCgroupIdAndDestroyResetsThePeer) {
  for (const char* address : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(address);
    ASSERT_OK_AND_ASSIGN(LoopbackServer server, ListenTcp(address));
    UniqueFd client = Connected(address, server.port, SOCK_STREAM);
    UniqueFd accepted(accept4(server.listener.get(), nullptr, nullptr, 0));
    ASSERT_TRUE(accepted.valid());
    const int family = address[0] == ':' ? AF_INET6 : AF_INET;
    std::optional<DiagSocket> s =
        Find(family, IPPROTO_TCP, kEstablished, LocalPort(client.get()));
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->destination_port(), server.port);
    EXPECT_EQ(s->state, TCP_ESTABLISHED);
    struct stat st;
    ASSERT_EQ(fstat(client.get(), &st), 0);
    EXPECT_EQ(s->inode, st.st_ino);
    EXPECT_EQ(s->cgroup_id, std::optional<uint64_t>(OwnCgroupId()));

    ASSERT_OK_AND_ASSIGN(SockDiag diag, SockDiag::Open());
    ASSERT_OK(diag.Destroy(*s));
    EXPECT_EQ(PeerSees(accepted.get(), absl::Seconds(1)), "reset");
    char c;
    EXPECT_EQ(recv(client.get(), &c, 1, MSG_DONTWAIT), -1);
    EXPECT_EQ(errno, ECONNABORTED);
    // The same socket again: gone (its cookie no longer finds it).
    EXPECT_EQ(diag.Destroy(*s).code(), absl::StatusCode::kNotFound);
  }
}

TEST(SockDiagTest, ConnectedUdpIsEstablishedUnconnectedIsNot) {
  ASSERT_OK_AND_ASSIGN(UdpPeer peer, BindUdp("::1"));
  UniqueFd connected = Connected("::1", peer.port, SOCK_DGRAM);
  UniqueFd unconnected(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_loopback;
  ASSERT_EQ(
      bind(unconnected.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)),
      0);
  std::optional<DiagSocket> s =
      Find(AF_INET6, IPPROTO_UDP, kEstablished, LocalPort(connected.get()));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->destination_port(), peer.port);
  EXPECT_EQ(s->cgroup_id, std::optional<uint64_t>(OwnCgroupId()));
  EXPECT_FALSE(
      Find(AF_INET6, IPPROTO_UDP, kEstablished, LocalPort(unconnected.get()))
          .has_value());
  ASSERT_OK_AND_ASSIGN(SockDiag diag, SockDiag::Open());
  ASSERT_OK(diag.Destroy(*s));
  // udp_abort: the socket is disconnected (a send without an address has
  // nowhere to go) and its pending error is the abort.
  EXPECT_EQ(send(connected.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EDESTADDRREQ);
  char c;
  EXPECT_EQ(recv(connected.get(), &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, ECONNABORTED);
  EXPECT_FALSE(
      Find(AF_INET6, IPPROTO_UDP, kEstablished, s->source_port()).has_value());
}

}  // namespace
}  // namespace egress::testing
