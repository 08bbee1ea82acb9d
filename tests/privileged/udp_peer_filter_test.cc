// The receive path's filter of recorded UDP peers (udp_peer_filter,
// bpf/lib/peers.h) spares a known peer's udp_peers lookup; it must never
// spare recording a new peer, nor let a peer that never sent be answered,
// nor outlive the entries egressd deletes with a removed target, nor let one
// socket's peer pass for another socket's. One server socket lives in the
// target for the whole test (a child driven through a shared page), so its
// peers' ways are in the filter while the test sends, replies and changes
// the target.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr uint32_t kServerAddr = 0x7f000002;  // 127.0.0.2
constexpr int kMaxPeers = 8192;

// What the server child does when asked (Shared::op).
enum Op : int {
  kRead,      // read `count` datagrams; result = datagrams read
  kReplyAll,  // answer every peer read so far; result = refused, failed
  kReplyTo,   // send to `to`; result = 0 or the errno
  kQuit,
};

// The page the test and the server child share across fork.
struct Shared {
  std::atomic<int> asked{0};  // bumped by the test for each request
  std::atomic<int> done{0};   // set to `asked` by the server when done
  std::atomic<bool> bound{false};
  int op = kRead;
  int count = 0;
  sockaddr_in to{};
  int result[2] = {0, 0};
  int bind_errno = 0;
  int npeers = 0;
  sockaddr_in peers[kMaxPeers];  // distinct senders read so far
};

bool SamePeer(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

// The server: one socket on 127.0.0.2:port, serving requests until kQuit
// or 60 s. Returns {requests served}.
std::vector<int> Serve(Shared* sh, uint16_t port) {
  const int fd = BoundUdpServer(kServerAddr, port);
  if (fd < 0) sh->bind_errno = -fd;
  sh->bound = true;
  if (sh->bind_errno != 0) return {-sh->bind_errno};
  int served = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    if (sh->asked.load() == sh->done.load()) {
      absl::SleepFor(absl::Milliseconds(1));
      continue;
    }
    const int op = sh->op;
    if (op == kQuit) break;
    sh->result[0] = sh->result[1] = 0;
    if (op == kRead) {
      for (int i = 0; i < sh->count; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) break;
        sockaddr_in peer{};
        socklen_t len = sizeof(peer);
        char buf[16];
        if (recvfrom(fd, buf, sizeof(buf), 0,
                     reinterpret_cast<sockaddr*>(&peer), &len) < 0) {
          break;
        }
        ++sh->result[0];
        bool seen = false;
        for (int j = 0; j < sh->npeers && !seen; ++j) {
          seen = SamePeer(sh->peers[j], peer);
        }
        if (!seen && sh->npeers < kMaxPeers) sh->peers[sh->npeers++] = peer;
      }
    } else if (op == kReplyAll) {
      for (int j = 0; j < sh->npeers; ++j) {
        if (sendto(fd, "pong", 4, 0,
                   reinterpret_cast<const sockaddr*>(&sh->peers[j]),
                   sizeof(sh->peers[j])) == 4) {
          continue;
        }
        ++sh->result[errno == EPERM ? 0 : 1];
      }
    } else if (op == kReplyTo) {
      sh->result[0] =
          sendto(fd, "pong", 4, 0, reinterpret_cast<const sockaddr*>(&sh->to),
                 sizeof(sh->to)) == 4
              ? 0
              : errno;
    }
    ++served;
    sh->done = sh->asked.load();
  }
  close(fd);
  return {served};
}

// An int the test and a child in the target's cgroup share across fork
// (0 until the child's server sockets are bound, then 1, or -1 when they
// could not be).
class SharedInt {
 public:
  SharedInt()
      : page_(mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0)) {
    if (ok()) new (page_) std::atomic<int>(0);
  }
  ~SharedInt() {
    if (ok()) munmap(page_, sizeof(std::atomic<int>));
  }
  SharedInt(const SharedInt&) = delete;
  SharedInt& operator=(const SharedInt&) = delete;
  bool ok() const { return page_ != MAP_FAILED; }
  std::atomic<int>* get() { return static_cast<std::atomic<int>*>(page_); }

 private:
  void* page_;
};

class UdpPeerFilterTest : public EgressdTest {
 protected:
  // Starts the server in the target's cgroup on `port`.
  void StartServer(uint16_t port) {
    port_ = port;
    void* page = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED);
    sh_ = new (page) Shared;
    const std::string dir = cg_->path();
    Shared* sh = sh_;
    server_ = std::thread([this, dir, sh, port] {
      server_result_ = RunInCgroupMulti(
          dir, [sh, port] { return Serve(sh, port); }, absl::Seconds(90));
    });
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!sh_->bound.load() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_TRUE(sh_->bound.load()) << "the server did not start";
    ASSERT_EQ(sh_->bind_errno, 0);
  }

  void TearDown() override {
    if (sh_ != nullptr) {
      if (server_.joinable()) {
        Ask(kQuit);
        server_.join();
      }
      munmap(sh_, sizeof(Shared));
      sh_ = nullptr;
    }
    for (int fd : clients_) close(fd);
    EgressdTest::TearDown();
  }

  // Sends the request and waits (20 s at most) until the server is done.
  void Ask(int op, int count = 0, const sockaddr_in* to = nullptr) {
    sh_->op = op;
    sh_->count = count;
    if (to != nullptr) sh_->to = *to;
    const int want = sh_->asked.load() + 1;
    sh_->asked = want;
    if (op == kQuit) return;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (sh_->done.load() != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_EQ(sh_->done.load(), want) << "the server did not answer";
  }

  // A client socket, unbound until its first send (its own port).
  int Client(int i) {
    while (static_cast<int>(clients_.size()) <= i) {
      clients_.push_back(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }
    return clients_[i];
  }

  // Peer i: client socket i % kClientPorts, source address 127.1.x.y
  // (i / kClientPorts), set with IP_PKTINFO. True when sent.
  bool SendAsPeer(int i) {
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port_);
    dst.sin_addr.s_addr = htonl(kServerAddr);
    in_addr source{htonl(0x7f010000 + static_cast<uint32_t>(i / kClientPorts))};
    return UdpSendFromSource(Client(i % kClientPorts),
                             reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                             source, "ping");
  }

  // Peers [first, first + n) send `rounds` datagrams each, round after
  // round; the server reads them all. Returns the datagrams it read.
  int SendRounds(int first, int n, int rounds) {
    int sent = 0;
    for (int r = 0; r < rounds; ++r) {
      for (int i = first; i < first + n; ++i) sent += SendAsPeer(i) ? 1 : 0;
      Ask(kRead, n);
    }
    EXPECT_EQ(sent, n * rounds);
    return sent;
  }

  // The server's answer to `to`: 0 or the errno.
  int ReplyTo(uint32_t addr_host, uint16_t port_host) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(addr_host);
    to.sin_port = htons(port_host);
    Ask(kReplyTo, 0, &to);
    return sh_->result[0];
  }

  // Port of client socket i (bound by its first send).
  uint16_t ClientPort(int i) {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(Client(i), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }

  static constexpr int kClientPorts = 8;
  uint16_t port_ = 0;
  Shared* sh_ = nullptr;
  std::thread server_;
  absl::StatusOr<std::vector<int>> server_result_;
  std::vector<int> clients_;
};

// Peers that send several times (so that they are in the filter), then as
// many new peers, each once. Every sender is answered, and no address or
// port that did not send.
TEST_F(UdpPeerFilterTest, EveryNewPeerIsRecordedAndNoStrangerAnswered) {
  AddTarget("srv");  // no rule: every answer is a reply to a peer
  StartServer(40261);
  constexpr int kWarm = 2000, kNew = 2000;
  SendRounds(0, kWarm, 3);
  SendRounds(kWarm, kNew, 1);
  ASSERT_EQ(sh_->npeers, kWarm + kNew);
  Ask(kReplyAll);
  EXPECT_EQ(sh_->result[0], 0) << "answers to peers that sent refused";
  EXPECT_EQ(sh_->result[1], 0) << "answers failed otherwise";
  EXPECT_EQ(Counters("srv")["udp_replies"], kWarm + kNew);

  // Peer 0 sent from 127.1.0.0 on client 0's port: the same address on a
  // port that never sent, another address on that port, and an address
  // past every peer's are strangers, in the filter or not.
  const uint16_t sent_port = ClientPort(0);
  uint16_t unused_port = static_cast<uint16_t>(sent_port + 1);
  for (int i = 0; i < kClientPorts; ++i) {
    if (ClientPort(i) == unused_port) ++unused_port;
  }
  EXPECT_EQ(ReplyTo(0x7f010000, unused_port), EPERM);
  EXPECT_EQ(ReplyTo(0x7f000063, sent_port), EPERM);  // 127.0.0.99
  EXPECT_EQ(ReplyTo(0x7f010000 + (kWarm + kNew) / kClientPorts + 1, sent_port),
            EPERM);
  EXPECT_EQ(ReplyTo(0x7f010000, sent_port), 0) << "peer 0 itself";
}

// egressd deletes a removed target's peers. A socket that outlives the
// removal, with ways of them in the filter, must not answer them once the
// target is back (they are strangers to the new target), and must record
// them again when they send again: the filter cannot vouch for deleted
// entries (the peer generation is in its hash).
TEST_F(UdpPeerFilterTest, SocketOutlivesItsTargetRemovedAndAddedAgain) {
  AddTarget("srv");
  StartServer(40262);
  constexpr int kPeers = 50;
  SendRounds(0, kPeers, 4);
  ASSERT_EQ(ReplyTo(0x7f010000, ClientPort(0)), 0);

  CtlOk({"target", "remove", "srv"});
  AddTarget("srv");
  EXPECT_EQ(ReplyTo(0x7f010000, ClientPort(0)), EPERM)
      << "a peer of the removed target was answered";
  // At once (within the filter's epoch): every peer sends again.
  SendRounds(0, kPeers, 1);
  Ask(kReplyAll);
  EXPECT_EQ(sh_->result[0], 0) << "peers that sent again were refused";
  EXPECT_EQ(sh_->result[1], 0);
}

// Audit and back: the peers recorded in either mode are answered in
// enforce mode, and a stranger is still refused.
TEST_F(UdpPeerFilterTest, ModeChangesKeepPeersAndStrangersOut) {
  AddTarget("srv");
  StartServer(40263);
  SendRounds(0, 40, 3);
  CtlOk({"mode", "audit", "--target", "srv"});
  SendRounds(40, 40, 3);
  SendRounds(0, 40, 1);
  CtlOk({"mode", "enforce", "--target", "srv"});
  SendRounds(80, 40, 2);
  Ask(kReplyAll);
  EXPECT_EQ(sh_->result[0], 0);
  EXPECT_EQ(sh_->result[1], 0);
  EXPECT_EQ(ReplyTo(0x7f000063, ClientPort(0)), EPERM);
}

// IPv6 peers, each sending several times from ::1, are all answered; a
// port of ::1 that never sent is not.
TEST_F(UdpPeerFilterTest, Ipv6PeersAreAnsweredAndStrangersRefused) {
  AddTarget("srv");
  constexpr uint16_t kPort = 40264;
  constexpr int kClients = 48, kRounds = 3;
  SharedInt shared;
  ASSERT_TRUE(shared.ok());
  std::atomic<int>* bound = shared.get();
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  }
  std::thread sender([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (bound->load() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    dst.sin6_port = htons(kPort);
    dst.sin6_addr = in6addr_loopback;
    for (int r = 0; r < kRounds && bound->load() > 0; ++r) {
      for (int fd : clients) {
        sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&dst),
               sizeof(dst));
      }
    }
  });
  auto r = RunInCgroupMulti(cg_->path(), [bound]() -> std::vector<int> {
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 me{};
    me.sin6_family = AF_INET6;
    me.sin6_port = htons(kPort);
    me.sin6_addr = in6addr_loopback;
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) {
      *bound = -1;
      return {-errno};
    }
    *bound = 1;
    std::vector<sockaddr_in6> peers;
    int read = 0;
    for (int i = 0; i < kClients * kRounds; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) break;
      sockaddr_in6 peer{};
      socklen_t len = sizeof(peer);
      char buf[16];
      if (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer),
                   &len) < 0) {
        break;
      }
      ++read;
      bool seen = false;
      for (const sockaddr_in6& q : peers) seen |= q.sin6_port == peer.sin6_port;
      if (!seen) peers.push_back(peer);
    }
    int refused = 0;
    uint16_t stranger = 1;
    for (const sockaddr_in6& q : peers) {
      if (sendto(fd, "pong", 4, 0, reinterpret_cast<const sockaddr*>(&q),
                 sizeof(q)) != 4) {
        ++refused;
      }
      stranger = std::max<uint16_t>(stranger, ntohs(q.sin6_port));
    }
    sockaddr_in6 to = me;
    to.sin6_port = htons(static_cast<uint16_t>(stranger + 1));
    int stranger_err =
        sendto(fd, "pong", 4, 0, reinterpret_cast<const sockaddr*>(&to),
               sizeof(to)) == 4
            ? 0
            : errno;
    close(fd);
    return {read, static_cast<int>(peers.size()), refused, stranger_err};
  });
  sender.join();
  for (int fd : clients) close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 4u) << (*r)[0];
  EXPECT_EQ((*r)[0], kClients * kRounds);
  EXPECT_EQ((*r)[1], kClients);
  EXPECT_EQ((*r)[2], 0) << "answers to IPv6 peers that sent refused";
  EXPECT_EQ((*r)[3], EPERM) << "a port of ::1 that never sent was answered";
}

// Two sockets of the target on one port (127.0.0.2:P and 127.0.0.3:P): a
// peer that sent to the first several times (so that a way of the first
// socket's holds it) and then once to the second is recorded for the
// second too, so the second may answer it; a peer that only sent to the
// first is a stranger to the second. The filter's hash holds the socket's
// cookie: without it the second socket's datagram would match the first's
// way and never be recorded. Three peers in turn, so that an epoch turning
// between the two sockets' reads cannot hide that.
TEST_F(UdpPeerFilterTest, APeerOfOneSocketIsRecordedForAnother) {
  AddTarget("srv");
  constexpr uint16_t kPort = 40265;
  constexpr int kPeers = 3, kToFirst = 3;
  SharedInt shared;
  ASSERT_TRUE(shared.ok());
  std::atomic<int>* bound = shared.get();
  std::vector<int> clients;
  for (int i = 0; i <= kPeers; ++i) {  // the last one: only to the first
    clients.push_back(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  }
  auto server = [](uint32_t addr) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    a.sin_addr.s_addr = htonl(addr);
    return a;
  };
  std::thread sender([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (bound->load() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    if (bound->load() <= 0) return;
    const sockaddr_in first = server(0x7f000002), second = server(0x7f000003);
    for (int i = 0; i <= kPeers; ++i) {
      for (int n = 0; n < kToFirst; ++n) {
        sendto(clients[i], "ping", 4, 0,
               reinterpret_cast<const sockaddr*>(&first), sizeof(first));
      }
      if (i < kPeers) {
        sendto(clients[i], "ping", 4, 0,
               reinterpret_cast<const sockaddr*>(&second), sizeof(second));
      }
    }
  });
  auto r = RunInCgroupMulti(cg_->path(), [bound]() -> std::vector<int> {
    const int fds[2] = {BoundUdpServer(0x7f000002, kPort),
                        BoundUdpServer(0x7f000003, kPort)};
    if (fds[0] < 0 || fds[1] < 0) {
      *bound = -1;
      return {fds[0] < 0 ? fds[0] : fds[1]};
    }
    *bound = 1;
    // Peer i's datagrams to the first socket, then its one to the second.
    auto read_one = [](int fd, sockaddr_in* from) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) return false;
      socklen_t len = sizeof(*from);
      char buf[16];
      return recvfrom(fd, buf, sizeof(buf), 0,
                      reinterpret_cast<sockaddr*>(from), &len) >= 0;
    };
    int read = 0, refused = 0;
    sockaddr_in from{}, stranger{};
    for (int i = 0; i < kPeers * kToFirst; ++i) read += read_one(fds[0], &from);
    for (int i = 0; i < kPeers; ++i) {
      if (!read_one(fds[1], &from)) continue;
      ++read;
      if (sendto(fds[1], "pong", 4, 0, reinterpret_cast<sockaddr*>(&from),
                 sizeof(from)) != 4) {
        ++refused;
      }
    }
    for (int i = 0; i < kToFirst; ++i) read += read_one(fds[0], &stranger);
    const int stranger_err =
        sendto(fds[1], "pong", 4, 0, reinterpret_cast<sockaddr*>(&stranger),
               sizeof(stranger)) == 4
            ? 0
            : errno;
    close(fds[0]);
    close(fds[1]);
    return {read, refused, stranger_err};
  });
  sender.join();
  for (int fd : clients) close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u) << (*r)[0];
  EXPECT_EQ((*r)[0], (kPeers + 1) * kToFirst + kPeers) << "datagrams read";
  EXPECT_EQ((*r)[1], 0)
      << "the second socket refused to answer peers that sent to it";
  EXPECT_EQ((*r)[2], EPERM)
      << "the second socket answered a peer that only sent to the first";
}

}  // namespace
}  // namespace egress::testing
