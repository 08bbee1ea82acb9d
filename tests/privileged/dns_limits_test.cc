// Lifetime and bounds of learned names, against a real dnsmasq
// (tests/testing/dnsmasq.h) and the real maps: one name holds more than
// 1,000 addresses; a full dns_bindings map refuses bindings and counts each
// refusal exactly; egressd sweeps bindings dead for long without cutting a
// connection opened while they lived. Lookups are built by hand (DnsQuery)
// from the test cgroup to dnsmasq on a loopback address of the test's own.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/dns_abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/dns_client.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/fake_resolver.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr uint16_t kPort = 40201;  // allow 40201/tcp *.many.test
constexpr int kPerAnswer = 25;     // A records per answer: fits 512 bytes
constexpr char kName[] = "a.many.test";
// A resolver the test answers by hand (fake_resolver.h), and an address
// where nothing listens (queries to it get no answer).
constexpr char kHandResolver[] = "127.203.0.71";
constexpr char kFloodSink[] = "127.203.0.72";
// More queries than dns_queries holds, twice over.
constexpr int kFlood = 2 * EGRESS_DNS_MAX_QUERIES + 8000;

// The kPerAnswer addresses of round `round`: 127.210.R.1 ... 127.210.R.25.
std::vector<std::string> RoundAddresses(int round) {
  std::vector<std::string> out;
  for (int i = 1; i <= kPerAnswer; ++i) {
    out.push_back(absl::StrCat("127.210.", round, ".", i));
  }
  return out;
}

std::string HostsOf(const std::vector<std::string>& addresses) {
  std::string hosts;
  for (const std::string& a : addresses)
    absl::StrAppend(&hosts, a, " ", kName, "\n");
  return hosts;
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<uint64_t>(ts.tv_nsec);
}

class DnsLimitsTest : public EgressdTest {
 protected:
  void StartWith(int ttl_floor, int answer_ttl) {
    extra_daemon_args_ = {absl::StrCat("--dns_ttl_floor=", ttl_floor)};
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    DnsmasqConfig config;
    config.hosts = HostsOf(RoundAddresses(0));
    config.ttl = answer_ttl;
    auto d = Dnsmasq::Start(config);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = *std::move(d);
    AddTarget("web");
    CtlOk({"allow", "dns", dns_->address()});
    CtlOk({"allow", absl::StrCat(kPort, "/tcp"), "*.many.test"});
  }
  void SetUp() override {}  // StartWith, per test
  void TearDown() override {
    dns_.reset();
    if (!socket_path_.empty()) EgressdTest::TearDown();
  }

  // dnsmasq answers round `round`'s addresses; the target asks once. The
  // number of addresses the answer held (-1: the lookup failed).
  int AskRound(int round) {
    const std::vector<std::string> addrs = RoundAddresses(round);
    absl::Status st = dns_->SetHosts(HostsOf(addrs), kName, addrs[0]);
    EXPECT_TRUE(st.ok()) << st;
    const std::string server = dns_->address();
    return InCgroup([server] {
      const DnsQueryResult r = DnsQuery(server, kName);
      return r.error != 0 ? -1 : static_cast<int>(r.addresses.size());
    });
  }

  // Connects to every address of rounds [0, rounds) from the target: how
  // many were allowed, how many refused (EPERM).
  std::vector<int> ConnectAll(int rounds) {
    auto r = RunInCgroupMulti(
        cg_->path(),
        [rounds] {
          int allowed = 0, denied = 0;
          for (int round = 0; round < rounds; ++round) {
            for (const std::string& a : RoundAddresses(round)) {
              const int rc = TcpConnect(a, kPort);
              if (Allowed(rc)) ++allowed;
              if (rc == EPERM) ++denied;
            }
          }
          return std::vector<int>{allowed, denied};
        },
        absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<int>{-1, -1};
  }

  nlohmann::json Dns() { return TargetStatus("web")["dns"]; }
  // Dns() once `field` reads `want`, or after 10 s (egressd sweeps every
  // 5 s).
  nlohmann::json DnsWhen(const std::string& field, uint64_t want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    nlohmann::json d = Dns();
    while (absl::Now() < deadline && d[field] != want) {
      absl::SleepFor(absl::Milliseconds(200));
      d = Dns();
    }
    return d;
  }

  std::unique_ptr<Dnsmasq> dns_;
};

// 48 answers of 25 addresses each for one name: all 1,200 addresses are
// bound at once and each connects; nothing is refused.
TEST_F(DnsLimitsTest, OneNameHoldsMoreThanThousandAddresses) {
  StartWith(/*ttl_floor=*/600, /*answer_ttl=*/600);
  if (IsSkipped() || HasFatalFailure()) return;
  constexpr int kRounds = 48;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_EQ(AskRound(round), kPerAnswer) << "round " << round;
  }
  const std::vector<int> r = ConnectAll(kRounds);
  EXPECT_EQ(r[0], kRounds * kPerAnswer) << "connects allowed";
  EXPECT_EQ(r[1], 0) << "connects refused";
  const nlohmann::json dns = Dns();
  EXPECT_EQ(dns["bindings_learned"].get<uint64_t>(), kRounds * kPerAnswer)
      << dns;
  EXPECT_EQ(dns["refused_full"].get<uint64_t>(), 0u) << dns;
  EXPECT_EQ(dns["answers_matched"].get<uint64_t>(), kRounds) << dns;
  EXPECT_EQ(dns["bindings_live"].get<uint64_t>(), kRounds * kPerAnswer) << dns;
}

// dns_bindings filled to 5 short of EGRESS_DNS_MAX_BINDINGS (live entries
// of another target id): an answer of 25 addresses binds 5, refuses 20, and
// `status` counts exactly that; exactly 5 of its addresses connect.
TEST_F(DnsLimitsTest, FullMapRefusalsAreCountedExactly) {
  StartWith(/*ttl_floor=*/600, /*answer_ttl=*/600);
  if (IsSkipped() || HasFatalFailure()) return;
  const std::string pin =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/dns_bindings");
  const int fd = bpf_obj_get(pin.c_str());
  ASSERT_GE(fd, 0) << pin << ": " << strerror(errno);
  constexpr uint32_t kFree = 5;
  egress_dns_binding live{};
  live.slot[0].pattern = 1;
  live.slot[0].expires_ns = MonotonicNs() + 3600ULL * 1000000000ULL;
  for (uint32_t i = 0; i < EGRESS_DNS_MAX_BINDINGS - kFree; ++i) {
    egress_dns_binding_key k{};
    k.target_id = EGRESS_MAX_TARGETS - 1;  // no target of this egressd
    k.family = EGRESS_FAMILY_IPV4;
    std::memcpy(k.addr, &i, sizeof(i));
    ASSERT_EQ(bpf_map_update_elem(fd, &k, &live, BPF_NOEXIST), 0)
        << "entry " << i << ": " << strerror(errno);
  }
  close(fd);
  ASSERT_EQ(AskRound(1), kPerAnswer);
  const nlohmann::json dns = Dns();
  EXPECT_EQ(dns["bindings_learned"].get<uint64_t>(), kFree) << dns;
  EXPECT_EQ(dns["refused_full"].get<uint64_t>(), kPerAnswer - kFree) << dns;
  // Round 1 only (round 0 was never asked).
  auto r = RunInCgroupMulti(cg_->path(), [] {
    int allowed = 0, denied = 0;
    for (const std::string& a : RoundAddresses(1)) {
      const int rc = TcpConnect(a, kPort);
      if (Allowed(rc)) ++allowed;
      if (rc == EPERM) ++denied;
    }
    return std::vector<int>{allowed, denied};
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0], static_cast<int>(kFree));
  EXPECT_EQ((*r)[1], static_cast<int>(kPerAnswer - kFree));
  // The refusals show in the metrics too.
  EXPECT_NE(ScrapeMetrics().find(absl::StrCat(
                "egress_dns_bindings_refused_total{target=\"web\"} ",
                kPerAnswer - kFree)),
            std::string::npos);
}

// Bindings that expired (floor 1 s) are swept once dead for
// EGRESS_DNS_SWEEP_NS; a connection opened while they lived keeps working
// after the sweep, a new connect is refused, a new lookup binds again.
TEST_F(DnsLimitsTest, SweepDeletesDeadBindingsButNoConnection) {
  StartWith(/*ttl_floor=*/1, /*answer_ttl=*/0);
  if (IsSkipped() || HasFatalFailure()) return;
  auto listener = TcpListener::Create("127.210.0.1", kPort);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const std::string server = dns_->address();
  const std::string pin =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/dns_bindings");
  auto r = RunInCgroupMulti(
      cg_->path(),
      [server, pin] {
        std::vector<int> res(5, -1);
        const DnsQueryResult q = DnsQuery(server, kName);
        if (q.error != 0 || q.addresses.size() != kPerAnswer) return res;
        sockaddr_in sa = MakeSockaddrIn("127.210.0.1", kPort);
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        res[0] = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0
                     ? 0
                     : errno;
        // Until egressd swept every binding (bounded: dead after 1 s + 10 s,
        // swept every 5 s).
        const int map = bpf_obj_get(pin.c_str());
        const absl::Time deadline = absl::Now() + absl::Seconds(40);
        int left = -1;
        while (absl::Now() < deadline) {
          egress_dns_binding_key k{}, next{};
          left = 0;
          const void* prev = nullptr;
          while (left <= EGRESS_DNS_MAX_BINDINGS &&
                 bpf_map_get_next_key(map, prev, &next) == 0) {
            ++left;
            k = next;
            prev = &k;
          }
          if (left == 0) break;
          absl::SleepFor(absl::Milliseconds(500));
        }
        close(map);
        res[1] = left;
        const char ping[] = "ping";
        char back[4] = {};
        res[2] = write(fd, ping, 4) == 4 ? 0 : errno;
        res[3] = recv(fd, back, 4, MSG_WAITALL) == 4 ? 0 : errno;
        close(fd);
        res[4] = TcpConnect("127.210.0.1", kPort);
        return res;
      },
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0], 0) << "connect right after the lookup";
  EXPECT_EQ((*r)[1], 0) << "bindings left after the sweep";
  EXPECT_EQ((*r)[2], 0) << "the open connection still sends";
  EXPECT_EQ((*r)[3], 0) << "and receives";
  EXPECT_DENIED((*r)[4]) << "a new connect once the binding is gone";
  const nlohmann::json dns = DnsWhen("bindings_swept", kPerAnswer);
  EXPECT_EQ(dns["bindings_swept"].get<uint64_t>(), kPerAnswer) << dns;
  EXPECT_EQ(dns["bindings_live"].get<uint64_t>(), 0u) << dns;
  // A new lookup binds the address again.
  EXPECT_EQ(InCgroup([server] {
              const DnsQueryResult q = DnsQuery(server, kName);
              if (q.error != 0) return 1000 + q.error;
              return TcpConnect("127.210.0.1", kPort);
            }),
            0);
}

// dns_queries is one table for every target: a target flooding its resolver
// with queries is held to its share (EGRESS_DNS_QUERIES_PER_WINDOW), so
// another target's query, pending all through the flood of more queries
// than the table holds, is still answered and learned. The flood is sent
// as usual and counted, not remembered.
TEST_F(DnsLimitsTest, QueryFloodOfOneTargetLeavesAnothersLookupsLearned) {
  StartWith(/*ttl_floor=*/600, /*answer_ttl=*/600);
  CtlOk({"allow", "dns", kHandResolver, "--target", "web"});
  auto flood_cg = TestCgroup::Create("flood");
  ASSERT_TRUE(flood_cg.ok()) << flood_cg.status();
  AddTarget("flood", flood_cg->get());
  CtlOk({"allow", "dns", kFloodSink, "--target", "flood"});
  CtlOk({"allow", "40202/tcp", "flood.test", "--target", "flood"});
  const int fd = UdpBound53(kHandResolver);  // outside both targets
  ASSERT_GE(fd, 0) << strerror(errno);

  // The resolver holds web's query until the flood is over, then answers.
  int flooded = -1;
  const std::string flood_path = (*flood_cg)->path();
  std::thread resolver =
      AnswerOneQuery(fd, [&flooded, flood_path](uint16_t id) {
        auto sent = RunInCgroupMulti(flood_path, [] {
          const int s = socket(AF_INET, SOCK_DGRAM, 0);
          const sockaddr_in sink = MakeSockaddrIn(kFloodSink, 53);
          int ok = 0;
          for (int i = 0; i < kFlood; ++i) {
            const std::vector<uint8_t> q = DnsQueryMessage(
                "x.flood.test", kDnsTypeA, static_cast<uint16_t>(i));
            if (sendto(s, q.data(), q.size(), 0,
                       reinterpret_cast<const sockaddr*>(&sink),
                       sizeof(sink)) > 0) {
              ++ok;
            }
          }
          close(s);
          return std::vector<int>{ok};
        });
        if (sent.ok()) flooded = (*sent)[0];
        return DnsAnswerMessage(kName, "127.210.9.1", id, 600);
      });
  auto r = RunInCgroupMulti(
      cg_->path(),
      [] {
        std::vector<int> res(2, -1);
        const DnsQueryResult q = DnsQuery(kHandResolver, kName);
        res[0] = q.addresses == std::vector<std::string>{"127.210.9.1"} ? 0 : 1;
        res[1] = TcpConnect("127.210.9.1", kPort);
        return res;
      },
      absl::Seconds(60));
  resolver.join();
  close(fd);
  ASSERT_EQ(flooded, kFlood) << "the flood's queries sent";
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0], 0) << "web's lookup, answered after the flood";
  EXPECT_ALLOWED((*r)[1]);

  const nlohmann::json status = CtlJson({"status"});
  for (const auto& t : status["targets"]) {
    if (t["name"] != "flood") continue;
    const uint64_t remembered = t["dns"]["queries"].get<uint64_t>();
    const uint64_t over = t["dns"]["queries_over_rate"].get<uint64_t>();
    EXPECT_EQ(remembered + over, static_cast<uint64_t>(kFlood)) << t.dump();
    EXPECT_LT(remembered, static_cast<uint64_t>(EGRESS_DNS_MAX_QUERIES / 2))
        << t.dump();
  }
  EXPECT_THAT(CtlOk({"status"}),
              ::testing::HasSubstr("queries not remembered: "));
  EXPECT_THAT(ScrapeMetrics(),
              ::testing::HasSubstr(
                  "egress_dns_queries_over_rate_total{target=\"flood\"}"));
}

}  // namespace
}  // namespace egress::testing
