// A busy UDP server in a target: every one of many distinct clients that
// sent to it may be answered (udp_peers keeps them all), none refused.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
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

class UdpManyPeersTest : public EgressdTest {};

constexpr uint16_t kServerPort = 40253;
constexpr uint32_t kServerAddr = 0x7f000002;  // 127.0.0.2
// Peers: kPorts client sockets x kAddrs source addresses (127.1.x.y, set
// per datagram with IP_PKTINFO), all on loopback.
constexpr int kPorts = 100;
constexpr int kAddrs = 1000;
constexpr int kPeers = kPorts * kAddrs;  // 100,000
// The client sends this many datagrams ahead of what the server has read,
// well within the server's receive buffer: none is dropped.
constexpr int kAhead = 128;

// What the server and the client share (a MAP_SHARED page, across fork).
struct Progress {
  std::atomic<int> received{0};
  std::atomic<bool> stop{false};
};

// Sends one datagram to the server from 127.1.(i/256).(i%256) on `fd`.
bool SendFrom(int fd, int i) {
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(kServerPort);
  dst.sin_addr.s_addr = htonl(kServerAddr);
  in_addr source{htonl(0x7f010000 + static_cast<uint32_t>(i))};
  return UdpSendFromSource(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                           source, "ping");
}

// The server, in the target: reads kPeers datagrams (bounded in time),
// then answers every sender. Reports {received, refused (EPERM), other
// send errors}.
std::vector<int> Serve(Progress* progress) {
  const int fd = BoundUdpServer(kServerAddr, kServerPort);
  if (fd < 0) {
    progress->stop = true;
    return {fd};
  }
  progress->received = 0;  // bound: the client may start
  std::vector<sockaddr_in> peers;
  peers.reserve(kPeers);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (static_cast<int>(peers.size()) < kPeers && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    char buf[16];
    if (recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&peer), &len) < 0) {
      continue;
    }
    peers.push_back(peer);
    progress->received = static_cast<int>(peers.size());
  }
  progress->stop = true;
  int refused = 0, failed = 0;
  for (const sockaddr_in& peer : peers) {
    if (sendto(fd, "pong", 4, 0, reinterpret_cast<const sockaddr*>(&peer),
               sizeof(peer)) == 4) {
      continue;
    }
    if (errno == EPERM) {
      ++refused;
    } else {
      ++failed;
    }
  }
  close(fd);
  return {static_cast<int>(peers.size()), refused, failed};
}

TEST_F(UdpManyPeersTest, ServerAnswersEveryOneOfAHundredThousandPeers) {
  AddTarget("dns");  // no rule: every answer is a reply to a peer
  void* page = mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  auto* progress = new (page) Progress;
  progress->received = -1;  // the server is not bound yet

  std::vector<int> clients;
  for (int p = 0; p < kPorts; ++p) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
  }
  int sent = 0, send_errors = 0;
  std::thread client([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (progress->received.load() < 0 && !progress->stop.load() &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    for (int a = 0; a < kAddrs && !progress->stop.load(); ++a) {
      for (int p = 0; p < kPorts; ++p) {
        while (sent - progress->received.load() >= kAhead &&
               !progress->stop.load() && absl::Now() < deadline) {
          std::this_thread::yield();
        }
        if (SendFrom(clients[p], a)) {
          ++sent;
        } else {
          ++send_errors;
        }
      }
    }
  });
  const absl::Time start = absl::Now();
  auto r = RunInCgroupMulti(
      cg_->path(), [progress] { return Serve(progress); }, absl::Seconds(90));
  progress->stop = true;
  client.join();
  const absl::Duration took = absl::Now() - start;
  for (int fd : clients) close(fd);
  munmap(page, sizeof(Progress));

  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u) << (*r)[0];
  EXPECT_EQ(send_errors, 0);
  EXPECT_EQ(sent, kPeers);
  EXPECT_EQ((*r)[0], kPeers) << "the server read fewer datagrams";
  EXPECT_EQ((*r)[1], 0) << "answers refused";
  EXPECT_EQ((*r)[2], 0) << "answers failed otherwise";
  EXPECT_EQ(Counters("dns")["udp_replies"], kPeers);
  std::printf("%d peers received and answered in %s\n", kPeers,
              absl::FormatDuration(took).c_str());
}

}  // namespace
}  // namespace egress::testing
