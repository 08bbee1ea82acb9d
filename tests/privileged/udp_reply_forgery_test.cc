// The UDP reply exemption (udp_peers) may only be fed by a datagram that
// reached the very socket that answers, in that socket's network namespace.
// A process of the target can make a private network namespace and have any
// address "send" to it there: from a socket of its own bound to that address
// (IP_TRANSPARENT on the namespace's loopback), or with a frame it injects
// with AF_PACKET. Back in the host namespace it must not be able to "reply"
// to that address. The address is a test host in another namespace that
// counts what arrives.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

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

constexpr uint16_t kAllowedPort = 40250;  // the target's UDP port, >= 1024

// How the private namespace makes the fake peer appear to send.
enum class Feed {
  kOwnSocket,     // a socket bound to the peer's address (IP_TRANSPARENT)
  kPacketSocket,  // an AF_PACKET frame on the namespace's loopback
};

// What the child reports, by index.
enum : size_t {
  kSetup,      // 0, or the errno of the failed set-up step
  kPeerSeen,   // 0 when the receiving socket saw the fake peer
  kHostReply,  // errno of sendto(fake peer) from the host namespace
  kNsReply,    // errno of sendto(fake peer) from the receiving socket
  kResults,
};

int Errno() { return errno; }

int SetUpLoopback() {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return Errno();
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) rc = Errno();
  ifr.ifr_flags |= IFF_UP;
  if (rc == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) != 0) rc = Errno();
  close(s);
  return rc;
}

int WriteProc(const char* path, const char* value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno();
  int rc = write(fd, value, strlen(value)) < 0 ? Errno() : 0;
  close(fd);
  return rc;
}

int UdpSocket(int family) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd >= 0 && family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  return fd;
}

uint32_t Sum16(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len & 1) sum += p[len - 1] << 8;
  return sum;
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum & 0xffff));
}

// An Ethernet frame (the loopback device's framing) carrying one UDP
// datagram from `src` to `dst`.
std::vector<uint8_t> UdpFrame(const SockAddr& src, const SockAddr& dst) {
  static const char kPayload[] = "forged";
  const size_t payload = sizeof(kPayload) - 1;
  const size_t udp_len = 8 + payload;
  std::vector<uint8_t> f(14, 0);
  bool v6 = src.family() == AF_INET6;
  f[12] = v6 ? 0x86 : 0x08;
  f[13] = v6 ? 0xdd : 0x00;
  uint8_t udp[8 + sizeof(kPayload)] = {};
  uint16_t sport, dport;
  if (v6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&src.storage);
    const auto* d6 = reinterpret_cast<const sockaddr_in6*>(&dst.storage);
    sport = s6->sin6_port;
    dport = d6->sin6_port;
    uint8_t ip[40] = {0x60};
    ip[4] = static_cast<uint8_t>(udp_len >> 8);
    ip[5] = static_cast<uint8_t>(udp_len);
    ip[6] = IPPROTO_UDP;
    ip[7] = 64;
    std::memcpy(ip + 8, &s6->sin6_addr, 16);
    std::memcpy(ip + 24, &d6->sin6_addr, 16);
    std::memcpy(udp, &sport, 2);
    std::memcpy(udp + 2, &dport, 2);
    udp[4] = static_cast<uint8_t>(udp_len >> 8);
    udp[5] = static_cast<uint8_t>(udp_len);
    std::memcpy(udp + 8, kPayload, payload);
    uint32_t sum = Sum16(ip + 8, 32);  // pseudo header: addresses,
    sum += udp_len + IPPROTO_UDP;      // length and next header
    uint16_t csum = Fold(Sum16(udp, udp_len, sum));
    std::memcpy(udp + 6, &csum, 2);
    f.insert(f.end(), ip, ip + sizeof(ip));
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&src.storage);
    const auto* d4 = reinterpret_cast<const sockaddr_in*>(&dst.storage);
    sport = s4->sin_port;
    dport = d4->sin_port;
    uint8_t ip[20] = {0x45};
    ip[2] = static_cast<uint8_t>((20 + udp_len) >> 8);
    ip[3] = static_cast<uint8_t>(20 + udp_len);
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    std::memcpy(ip + 12, &s4->sin_addr, 4);
    std::memcpy(ip + 16, &d4->sin_addr, 4);
    uint16_t csum = Fold(Sum16(ip, sizeof(ip)));
    std::memcpy(ip + 10, &csum, 2);
    std::memcpy(udp, &sport, 2);
    std::memcpy(udp + 2, &dport, 2);
    udp[4] = static_cast<uint8_t>(udp_len >> 8);
    udp[5] = static_cast<uint8_t>(udp_len);
    std::memcpy(udp + 8, kPayload, payload);  // checksum 0: none (IPv4)
    f.insert(f.end(), ip, ip + sizeof(ip));
  }
  f.insert(f.end(), udp, udp + udp_len);
  return f;
}

bool SameEndpoint(const sockaddr_storage& a, const SockAddr& b) {
  if (a.ss_family != b.family()) return false;
  if (a.ss_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
  const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

// Runs in a child inside the target. `host_any` is the wildcard address with
// kAllowedPort, `ns_loop` the loopback address with kAllowedPort, `peer` the
// test host's listener.
std::vector<int> ForgeInOwnNetns(Feed feed, const SockAddr& host_any,
                                 const SockAddr& ns_loop,
                                 const SockAddr& peer) {
  std::vector<int> out(kResults, -1);
  const int family = peer.family();
  // A socket on the allowed port in the host namespace, made before leaving.
  int host = UdpSocket(family);
  if (host < 0 || bind(host, host_any.get(), host_any.len) != 0) {
    out[kSetup] = Errno();
    return out;
  }
  if (unshare(CLONE_NEWNET) != 0 || (out[kSetup] = SetUpLoopback()) != 0) {
    if (out[kSetup] <= 0) out[kSetup] = Errno();
    return out;
  }
  int recv_fd = UdpSocket(family);
  if (recv_fd < 0 || bind(recv_fd, ns_loop.get(), ns_loop.len) != 0) {
    out[kSetup] = Errno();
    return out;
  }
  if (feed == Feed::kOwnSocket) {
    int s = UdpSocket(family);
    int one = 1;
    int rc =
        family == AF_INET6
            ? setsockopt(s, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
            : setsockopt(s, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
    if (rc != 0 || bind(s, peer.get(), peer.len) != 0 ||
        sendto(s, "forged", 6, 0, ns_loop.get(), ns_loop.len) < 0) {
      out[kSetup] = Errno();
      return out;
    }
  } else {
    if (family == AF_INET) {
      // Frames to 127.0.0.1 that arrive on a device count as martians
      // unless route_localnet is set; this namespace is ours.
      WriteProc("/proc/sys/net/ipv4/conf/all/route_localnet", "1");
      WriteProc("/proc/sys/net/ipv4/conf/lo/route_localnet", "1");
    }
    int p = socket(AF_PACKET, SOCK_RAW, 0);
    std::vector<uint8_t> frame = UdpFrame(peer, ns_loop);
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
    ll.sll_protocol = htons(family == AF_INET6 ? ETH_P_IPV6 : ETH_P_IP);
    ll.sll_halen = 6;
    if (p < 0 || sendto(p, frame.data(), frame.size(), 0,
                        reinterpret_cast<sockaddr*>(&ll), sizeof(ll)) < 0) {
      out[kSetup] = Errno();
      return out;
    }
  }
  out[kSetup] = 0;
  pollfd pfd{recv_fd, POLLIN, 0};
  out[kPeerSeen] = ETIMEDOUT;
  if (poll(&pfd, 1, 2000) == 1) {
    char buf[64];
    sockaddr_storage from{};
    socklen_t len = sizeof(from);
    if (recvfrom(recv_fd, buf, sizeof(buf), 0,
                 reinterpret_cast<sockaddr*>(&from), &len) < 0) {
      out[kPeerSeen] = Errno();
    } else {
      out[kPeerSeen] = SameEndpoint(from, peer) ? 0 : ENOMSG;
    }
  }
  out[kHostReply] =
      sendto(host, "reply", 5, 0, peer.get(), peer.len) < 0 ? Errno() : 0;
  out[kNsReply] =
      sendto(recv_fd, "reply", 5, 0, peer.get(), peer.len) < 0 ? Errno() : 0;
  return out;
}

class UdpReplyForgeryTest : public EgressdTest {
 protected:
  // Forges the test host's listener as a peer inside a private namespace of
  // a target child, for IPv4 and IPv6, and checks that the host namespace
  // cannot reply to it and that nothing arrives.
  void ExpectForgeryRefused(Feed feed) {
    auto ns = TestNetns::Create("forge");
    ASSERT_TRUE(ns.ok()) << ns.status();
    for (const bool v6 : {false, true}) {
      SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
      const std::string addr = v6 ? (*ns)->ns_addr6() : (*ns)->ns_addr4();
      auto fd = (*ns)->BindSocketInNetns(SOCK_DGRAM, addr, 0);
      ASSERT_TRUE(fd.ok()) << fd.status();
      auto listener = UdpEchoServer::FromBoundSocket(*std::move(fd));
      ASSERT_TRUE(listener.ok()) << listener.status();
      auto peer = ParseSockAddr(addr, (*listener)->port());
      auto host_any = ParseSockAddr(v6 ? "::" : "0.0.0.0", kAllowedPort);
      auto ns_loop = ParseSockAddr(v6 ? "::1" : "127.0.0.1", kAllowedPort);
      ASSERT_TRUE(peer.ok() && host_any.ok() && ns_loop.ok());
      auto r = RunInCgroupMulti(cg_->path(), [&] {
        return ForgeInOwnNetns(feed, *host_any, *ns_loop, *peer);
      });
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->size(), size_t{kResults});
      if (feed == Feed::kOwnSocket) {
        // The setsockopt hook refuses IP_TRANSPARENT / IPV6_TRANSPARENT on
        // a target's datagram socket in any namespace: the forgery ends
        // there.
        EXPECT_EQ((*r)[kSetup], EPERM)
            << "IP_TRANSPARENT on a datagram socket was not refused: "
            << strerror((*r)[kSetup]);
        EXPECT_EQ((*listener)->datagrams(), 0);
        continue;
      }
      ASSERT_EQ((*r)[kSetup], 0) << strerror((*r)[kSetup]);
      ASSERT_EQ((*r)[kPeerSeen], 0)
          << "the namespace did not deliver the forged datagram: "
          << strerror((*r)[kPeerSeen]);
      EXPECT_EQ((*r)[kHostReply], EPERM)
          << "a reply to a peer forged in another namespace was let out";
      // The receiving socket itself may answer (the hook allows it); its
      // private namespace has no route to the test host.
      EXPECT_EQ((*r)[kNsReply], ENETUNREACH) << strerror((*r)[kNsReply]);
      absl::SleepFor(absl::Milliseconds(200));
      EXPECT_EQ((*listener)->datagrams(), 0) << "the forged reply arrived";
    }
  }
};

TEST_F(UdpReplyForgeryTest, PeerFedFromOwnNetnsSocketIsRefused) {
  AddTarget("web");
  // The only rule: the allowed UDP port, on loopback.
  CtlOk({"allow", absl::StrCat(kAllowedPort, "/udp"), "127.0.0.1"});
  CtlOk({"allow", absl::StrCat(kAllowedPort, "/udp"), "::1"});
  ExpectForgeryRefused(Feed::kOwnSocket);
}

// In the host's own namespace: IPv6 lets a socket with IPV6_FREEBIND (no
// capability needed) bind to an address the host does not own and send from
// it, and loopback delivers that to another socket of the target on an
// allowed local port, which would then "reply" to the made-up peer: any IPv6
// host. The hook refuses the option on datagram sockets (also set through
// IP_FREEBIND, and IPV6_TRANSPARENT); TCP and IPv4 sockets, and turning it
// off, keep working.
TEST_F(UdpReplyForgeryTest, NonlocalSourceInTheHostNamespaceIsRefused) {
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(kAllowedPort, "/udp"), "::1"});
  auto ns = TestNetns::Create("freebind");
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto fd = (*ns)->BindSocketInNetns(SOCK_DGRAM, (*ns)->ns_addr6(), 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  auto listener = UdpEchoServer::FromBoundSocket(*std::move(fd));
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto peer = ParseSockAddr((*ns)->ns_addr6(), (*listener)->port());
  auto server = ParseSockAddr("::", kAllowedPort);
  auto loop = ParseSockAddr("::1", kAllowedPort);
  ASSERT_TRUE(peer.ok() && server.ok() && loop.ok());
  // What the child reports, by index.
  enum : size_t { kFreebind, kBind, kSeen, kReply, kN };
  auto r = RunInCgroupMulti(cg_->path(), [&]() -> std::vector<int> {
    std::vector<int> out(kN, -1);
    const int one = 1;
    int a = UdpSocket(AF_INET6);
    int b = UdpSocket(AF_INET6);
    if (a < 0 || b < 0 || bind(a, server->get(), server->len) != 0) {
      return {Errno()};
    }
    out[kFreebind] =
        setsockopt(b, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) != 0
            ? Errno()
            : 0;
    out[kBind] = bind(b, peer->get(), peer->len) != 0 ? Errno() : 0;
    out[kSeen] = ETIMEDOUT;
    if (out[kBind] == 0 &&
        sendto(b, "forged", 6, 0, loop->get(), loop->len) == 6) {
      // Read with the source address: what runs recvmsg6.
      pollfd p{a, POLLIN, 0};
      char buf[16];
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      if (poll(&p, 1, 1000) == 1 &&
          recvfrom(a, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from),
                   &len) > 0) {
        out[kSeen] = SameEndpoint(from, *peer) ? 0 : ENOMSG;
      }
    }
    out[kReply] =
        sendto(a, "reply", 5, 0, peer->get(), peer->len) < 0 ? Errno() : 0;
    return out;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), size_t{kN}) << strerror((*r)[0]);
  EXPECT_EQ((*r)[kFreebind], EPERM) << "IPV6_FREEBIND was not refused";
  EXPECT_EQ((*r)[kBind], EADDRNOTAVAIL) << strerror((*r)[kBind]);
  EXPECT_EQ((*r)[kSeen], ETIMEDOUT);
  EXPECT_EQ((*r)[kReply], EPERM) << "a reply to a made-up peer was let out";
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ((*listener)->datagrams(), 0) << "the made-up peer was reached";

  // Every spelling of it on a datagram socket is refused; what cannot
  // borrow an address for a datagram passes.
  struct Option {
    int family, type, level, name, value;
    int want;
  };
  const Option options[] = {
      {AF_INET6, SOCK_DGRAM, IPPROTO_IP, IP_FREEBIND, 1, EPERM},
      {AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_TRANSPARENT, 1, EPERM},
      {AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_TRANSPARENT, 1, EPERM},
      {AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_FREEBIND, 0, 0},
      {AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_FREEBIND, 1, 0},
      {AF_INET6, SOCK_STREAM, IPPROTO_IPV6, IPV6_FREEBIND, 1, 0},
      {AF_INET, SOCK_STREAM, IPPROTO_IP, IP_FREEBIND, 1, 0},
  };
  for (const Option& o : options) {
    SCOPED_TRACE(absl::StrCat("family ", o.family, " type ", o.type, " option ",
                              o.level, "/", o.name, " = ", o.value));
    EXPECT_EQ(InCgroup([&] {
                int s = socket(o.family, o.type | SOCK_CLOEXEC, 0);
                if (s < 0) return Errno();
                int rc = setsockopt(s, o.level, o.name, &o.value,
                                    sizeof(o.value)) != 0
                             ? Errno()
                             : 0;
                close(s);
                return rc;
              }),
              o.want);
  }
  std::vector<nlohmann::json> records =
      Records({"--target", "web", "--verdict", "deny"}, 1);
  bool named = false;
  for (const nlohmann::json& e : records) {
    if (e.value("hook", "") != "setsockopt") continue;
    EXPECT_EQ(e["reason"], "NONLOCAL_SOURCE_BLOCKED") << e.dump();
    EXPECT_EQ(e["socket"]["option"], "nonlocal_source") << e.dump();
    named = true;
  }
  EXPECT_TRUE(named) << "no setsockopt record";
}

TEST_F(UdpReplyForgeryTest, PeerInjectedWithPacketSocketIsRefused) {
  AddTarget("web");  // no rules at all
  ExpectForgeryRefused(Feed::kPacketSocket);
}

// The legitimate case: a UDP server in the target answers a client that
// wrote first, from the socket that received (sendto, and connect + send),
// for IPv4, IPv6 and an IPv4 client of a dual-stack socket. Another socket
// bound to the same port is not the one that received: it needs a rule.
struct ServerCase {
  const char* name;
  int server_family;
  const char* server_bind;  // server socket address
  const char* client_addr;  // where the client sends (and binds its socket)
  const char* client_bind;
};

TEST_F(UdpReplyForgeryTest, ReplyOnlyFromTheSocketThatReceived) {
  AddTarget("dns");  // no rules
  const ServerCase cases[] = {
      {"IPv4", AF_INET, "127.0.0.2", "127.0.0.2", "127.0.0.1"},
      {"IPv6", AF_INET6, "::1", "::1", "::1"},
      {"IPv4-mapped", AF_INET6, "::", "127.0.0.2", "127.0.0.1"},
  };
  uint16_t port = 40260;
  for (const ServerCase& c : cases) {
    SCOPED_TRACE(c.name);
    ++port;
    auto server_addr = ParseSockAddr(c.server_bind, port);
    auto client_dst = ParseSockAddr(c.client_addr, port);
    auto client_src = ParseSockAddr(c.client_bind, 0);
    ASSERT_TRUE(server_addr.ok() && client_dst.ok() && client_src.ok());
    int client = socket(client_dst->family(), SOCK_DGRAM, 0);
    ASSERT_EQ(bind(client, client_src->get(), client_src->len), 0);
    std::atomic<bool> done{false};
    std::atomic<int> replies{0};
    std::thread sender([&] {
      absl::Time deadline = absl::Now() + absl::Seconds(5);
      while (!done.load() && absl::Now() < deadline) {
        sendto(client, "ping", 4, 0, client_dst->get(), client_dst->len);
        pollfd p{client, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
          char buf[16];
          if (recv(client, buf, sizeof(buf), 0) > 0) ++replies;
        }
      }
    });
    auto r = RunInCgroupMulti(cg_->path(), [&]() -> std::vector<int> {
      auto bound = [&] {
        int fd = socket(c.server_family, SOCK_DGRAM, 0);
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (c.server_family == AF_INET6) {
          setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(fd, server_addr->get(), server_addr->len) != 0) return -1;
        return fd;
      };
      int fd = bound();
      if (fd < 0) return {Errno()};
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 4000) <= 0) return {ETIMEDOUT};
      char buf[16];
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      if (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer),
                   &len) < 0) {
        return {Errno()};
      }
      auto* peer_sa = reinterpret_cast<sockaddr*>(&peer);
      int other = bound();
      int other_rc = other < 0                                       ? Errno()
                     : sendto(other, "pong", 4, 0, peer_sa, len) < 0 ? Errno()
                                                                     : 0;
      int sendto_rc = sendto(fd, "pong", 4, 0, peer_sa, len) < 0 ? Errno() : 0;
      int connect_rc = connect(fd, peer_sa, len) != 0 ? Errno()
                       : send(fd, "pong", 4, 0) < 0   ? Errno()
                                                      : 0;
      return {0, sendto_rc, connect_rc, other_rc};
    });
    absl::Time deadline = absl::Now() + absl::Seconds(2);
    while (replies.load() < 2 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    done = true;
    sender.join();
    close(client);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->size(), 4u) << strerror((*r)[0]);
    EXPECT_EQ((*r)[1], 0) << "sendto() reply refused: " << strerror((*r)[1]);
    EXPECT_EQ((*r)[2], 0) << "connected reply refused: " << strerror((*r)[2]);
    EXPECT_EQ((*r)[3], EPERM)
        << "another socket on the same port answered the peer";
    EXPECT_GE(replies.load(), 2);
  }
}

}  // namespace
}  // namespace egress::testing
