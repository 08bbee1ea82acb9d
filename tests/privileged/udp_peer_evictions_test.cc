// Every peer a target's UDP socket records in udp_peers is counted, and so is
// every one the LRU evicts: `status` and /metrics say how many peers can no
// longer be answered, and a target's removal (its peers deleted by egressd)
// is no eviction.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/map_walk.h"

namespace egress::testing {
namespace {

constexpr uint16_t kServerPort = 40263;
constexpr uint32_t kServerAddr = 0x7f000003;  // 127.0.0.3
// Peers are kPorts client sockets x source addresses 127.1.x.y (set per
// datagram with IP_PKTINFO): peer i is socket i % kPorts from address
// 127.1.0.0 + i / kPorts.
constexpr int kPorts = 100;
// The client sends this many datagrams ahead of what the server has read,
// well within the server's receive buffer: none is dropped.
constexpr int kAhead = 128;

// What the server and the client share (a MAP_SHARED page, across fork).
struct Progress {
  std::atomic<int> received{-1};  // -1: the server is not bound yet
  std::atomic<bool> stop{false};
};

// The server, in the target: reads `expected` datagrams with their
// sender's address (bounded in time). Reports {received} or {-errno}.
std::vector<int> Serve(Progress* progress, int expected) {
  const int fd = BoundUdpServer(kServerAddr, kServerPort);
  if (fd < 0) {
    progress->stop = true;
    return {fd};
  }
  progress->received = 0;  // bound: the client may start
  int received = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(150);
  while (received < expected && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    char buf[16];
    if (recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&peer), &len) < 0) {
      continue;
    }
    progress->received = ++received;
  }
  progress->stop = true;
  close(fd);
  return {received};
}

class UdpPeerEvictionsTest : public EgressdTest {
 protected:
  // Peers 0 .. peers-1 each send `rounds` datagrams to a server in the test
  // cgroup, which reads them all. Returns the datagrams read.
  int Exchange(int peers, int rounds) {
    const int expected = peers * rounds;
    void* page = mmap(nullptr, sizeof(Progress), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
      ADD_FAILURE() << "mmap";
      return -1;
    }
    auto* progress = new (page) Progress;
    std::vector<int> clients;
    for (int p = 0; p < kPorts; ++p) {
      clients.push_back(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }
    int sent = 0, send_errors = 0;
    std::thread client([&] {
      const absl::Time deadline = absl::Now() + absl::Seconds(150);
      while (progress->received.load() < 0 && !progress->stop.load() &&
             absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(5));
      }
      sockaddr_in dst{};
      dst.sin_family = AF_INET;
      dst.sin_port = htons(kServerPort);
      dst.sin_addr.s_addr = htonl(kServerAddr);
      for (int r = 0; r < rounds; ++r) {
        for (int i = 0; i < peers && !progress->stop.load(); ++i) {
          while (sent - progress->received.load() >= kAhead &&
                 !progress->stop.load() && absl::Now() < deadline) {
            std::this_thread::yield();
          }
          in_addr source{htonl(0x7f010000 + static_cast<uint32_t>(i / kPorts))};
          if (UdpSendFromSource(clients[i % kPorts],
                                reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                                source, "ping")) {
            ++sent;
          } else {
            ++send_errors;
          }
        }
      }
    });
    auto r = RunInCgroupMulti(
        cg_->path(), [progress, expected] { return Serve(progress, expected); },
        absl::Seconds(180));
    progress->stop = true;
    client.join();
    for (int fd : clients) close(fd);
    munmap(page, sizeof(Progress));
    EXPECT_EQ(send_errors, 0);
    EXPECT_EQ(sent, expected);
    if (!r.ok() || r->size() != 1) {
      ADD_FAILURE() << "server: " << r.status();
      return -1;
    }
    return (*r)[0];
  }

  // `status -o json`, asked again (bounded) until `done(status)`: egressd
  // looks at udp_peers again at most every 2 s.
  nlohmann::json StatusWhen(
      const std::function<bool(const nlohmann::json&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    nlohmann::json status = CtlJson({"status"});
    while (!done(status) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
      status = CtlJson({"status"});
    }
    return status;
  }

  static nlohmann::json TargetIn(const nlohmann::json& status,
                                 const std::string& name) {
    for (const auto& t : status["targets"]) {
      if (t["name"] == name) return t;
    }
    return nlohmann::json::object();
  }

  // Entries of target `id` in the pinned udp_peers, walked here.
  uint64_t EntriesInMap(uint32_t id) {
    const std::string pin =
        absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/udp_peers");
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (fd.get() < 0) {
      ADD_FAILURE() << "bpf_obj_get " << pin << ": " << strerror(errno);
      return 0;
    }
    uint64_t n = 0;
    auto walked = ForEachKey<egress_peer_key>(
        fd.get(), [&](const egress_peer_key& k) { n += k.target_id == id; });
    EXPECT_TRUE(walked.ok()) << walked.status();
    return n;
  }
};

uint64_t U64(const nlohmann::json& j, const char* field) {
  return j.contains(field) ? j[field].get<uint64_t>() : ~0ULL;
}

// Each distinct peer is one recorded entry, whatever it sends after; none
// is evicted while the map has room. (The peers are a server socket's: a
// socket of another Exchange has peers of its own.)
TEST_F(UdpPeerEvictionsTest, PeersRecordedAreCountedExactly) {
  constexpr int kPeers = 150;
  constexpr uint64_t kWant = kPeers;
  AddTarget("srv");  // no rule: the server only reads
  // Every peer sends three times: the second and third are a known peer's.
  ASSERT_EQ(Exchange(kPeers, /*rounds=*/3), 3 * kPeers);
  auto recorded = [&](const nlohmann::json& s) {
    return U64(TargetIn(s, "srv")["counters"], "udp_peers_recorded") == kWant;
  };
  nlohmann::json status = StatusWhen(recorded);
  nlohmann::json c = TargetIn(status, "srv")["counters"];
  EXPECT_EQ(U64(c, "udp_peers_recorded"), kWant) << status.dump();
  EXPECT_EQ(U64(c, "udp_peers_not_recorded"), 0u);
  EXPECT_EQ(U64(c, "udp_peers_live"), kWant);
  EXPECT_EQ(U64(c, "udp_peers_evicted"), 0u);
  EXPECT_EQ(U64(status, "udp_peers_evicted"), 0u);
  const uint32_t id = TargetIn(status, "srv")["id"].get<uint32_t>();
  EXPECT_EQ(EntriesInMap(id), kWant);

  // Past the 2 s of egressd's last look: the next status looks again, and
  // finds the same.
  absl::SleepFor(absl::Milliseconds(2100));
  status = CtlJson({"status"});
  c = TargetIn(status, "srv")["counters"];
  EXPECT_EQ(U64(c, "udp_peers_recorded"), kWant) << status.dump();
  EXPECT_EQ(U64(c, "udp_peers_live"), kWant);
  EXPECT_EQ(U64(c, "udp_peers_evicted"), 0u);

  const std::string m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(
      m, absl::StrCat("egress_udp_peers_recorded_total{target=\"srv\"} ",
                      kPeers, "\n")))
      << m;
  EXPECT_TRUE(absl::StrContains(
      m, "egress_udp_peers_evicted_total{target=\"srv\"} 0\n"))
      << m;
  EXPECT_TRUE(absl::StrContains(
      m, absl::StrCat("egress_udp_peers{target=\"srv\"} ", kPeers, "\n")))
      << m;
}

// More distinct peers than udp_peers holds (EGRESS_MAX_PEERS over all
// targets): the LRU evicts, and every eviction is counted: what was
// recorded is either still in the map or evicted. Removing the target then
// deletes what is left without counting it as evicted.
TEST_F(UdpPeerEvictionsTest, EvictionsAreCounted) {
  constexpr int kPeers = EGRESS_MAX_PEERS + 37856;  // 300,000
  static_assert(kPeers / kPorts < 65536, "source addresses 127.1.x.y");
  AddTarget("flood");
  const absl::Time start = absl::Now();
  ASSERT_EQ(Exchange(kPeers, /*rounds=*/1), kPeers);
  std::printf("%d peers sent and read in %s\n", kPeers,
              absl::FormatDuration(absl::Now() - start).c_str());
  auto all_counted = [&](const nlohmann::json& s) {
    const nlohmann::json c = TargetIn(s, "flood")["counters"];
    return U64(c, "udp_peers_recorded") + U64(c, "udp_peers_not_recorded") ==
           static_cast<uint64_t>(kPeers);
  };
  nlohmann::json status = StatusWhen(all_counted);
  const nlohmann::json c = TargetIn(status, "flood")["counters"];
  const uint64_t recorded = U64(c, "udp_peers_recorded");
  const uint64_t not_recorded = U64(c, "udp_peers_not_recorded");
  const uint64_t live = U64(c, "udp_peers_live");
  const uint64_t evicted = U64(c, "udp_peers_evicted");
  std::printf("recorded %llu, not recorded %llu, kept %llu, evicted %llu\n",
              static_cast<unsigned long long>(recorded),
              static_cast<unsigned long long>(not_recorded),
              static_cast<unsigned long long>(live),
              static_cast<unsigned long long>(evicted));
  ASSERT_EQ(recorded + not_recorded, static_cast<uint64_t>(kPeers))
      << status.dump();
  EXPECT_LE(live, static_cast<uint64_t>(EGRESS_MAX_PEERS));
  // At least every peer past the map's room went.
  EXPECT_GE(evicted, recorded - EGRESS_MAX_PEERS);
  EXPECT_GT(evicted, 0u);
  // Nothing deleted: recorded = kept + evicted, the kept ones as the map
  // itself holds them.
  EXPECT_EQ(recorded - evicted, live);
  const uint32_t id = TargetIn(status, "flood")["id"].get<uint32_t>();
  EXPECT_EQ(EntriesInMap(id), live);
  EXPECT_EQ(U64(status, "udp_peers_evicted"), evicted);
  const std::string m = ScrapeMetrics();
  EXPECT_TRUE(absl::StrContains(
      m, absl::StrCat("egress_udp_peers_evicted_total{target=\"flood\"} ",
                      evicted, "\n")))
      << m;
  EXPECT_TRUE(absl::StrContains(
      m, absl::StrCat("egress_udp_peers_evicted_all_targets_total ", evicted,
                      "\n")))
      << m;

  // The peers left are deleted with the target: the evictions stay what
  // they were.
  CtlOk({"target", "remove", "flood"});
  EXPECT_EQ(EntriesInMap(id), 0u);
  absl::SleepFor(absl::Milliseconds(2100));
  status = CtlJson({"status"});
  EXPECT_EQ(U64(status, "udp_peers_evicted"), evicted) << status.dump();
}

// Removing a target deletes its peers: no eviction. A target added again
// (the id may be the same) starts from nothing.
TEST_F(UdpPeerEvictionsTest, RemovedTargetsPeersAreNoEvictions) {
  constexpr int kPeers = 200;
  constexpr uint64_t kWant = kPeers;
  AddTarget("srv");
  ASSERT_EQ(Exchange(kPeers, /*rounds=*/1), kPeers);
  nlohmann::json status = StatusWhen([&](const nlohmann::json& s) {
    return U64(TargetIn(s, "srv")["counters"], "udp_peers_recorded") == kWant;
  });
  const uint32_t id = TargetIn(status, "srv")["id"].get<uint32_t>();
  EXPECT_EQ(U64(TargetIn(status, "srv")["counters"], "udp_peers_live"), kWant);
  EXPECT_EQ(EntriesInMap(id), kWant);

  CtlOk({"target", "remove", "srv"});
  EXPECT_EQ(EntriesInMap(id), 0u);
  absl::SleepFor(absl::Milliseconds(2100));
  status = CtlJson({"status"});
  EXPECT_EQ(U64(status, "udp_peers_evicted"), 0u) << status.dump();
  EXPECT_TRUE(absl::StrContains(
      ScrapeMetrics(), "egress_udp_peers_evicted_all_targets_total 0\n"));

  AddTarget("srv");
  status = CtlJson({"status"});
  const nlohmann::json c = TargetIn(status, "srv")["counters"];
  EXPECT_EQ(U64(c, "udp_peers_recorded"), 0u) << status.dump();
  EXPECT_EQ(U64(c, "udp_peers_live"), 0u);
  EXPECT_EQ(U64(c, "udp_peers_evicted"), 0u);
  EXPECT_EQ(U64(status, "udp_peers_evicted"), 0u);
}

}  // namespace
}  // namespace egress::testing
