// Name rules against a real DNS server (dnsmasq on a loopback address of the
// test's own; tests/testing/dnsmasq.h): the target's own lookups teach the
// kernel which addresses its names have, before the application reads the
// answer, and nothing else does. Lookups go through glibc with a private
// resolv.conf (a mount namespace per child) or are built by hand; none can
// reach the machine's resolver. Connects go to loopback addresses the names
// resolve to, where nothing listens: ECONNREFUSED is "allowed", EPERM
// "refused" (verdict_expect.h).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/dns_builder.h"
#include "tests/testing/dns_client.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/fake_resolver.h"
#include "tests/testing/listeners.h"
#include "tests/testing/netns.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "userspace/policy/name_rules.h"

namespace egress::testing {
namespace {

constexpr uint16_t kApiPort = 40101;    // allow 40101/tcp api.example.test
constexpr uint16_t kWildPort = 40102;   // allow 40102/tcp *.wild.test
constexpr uint16_t kAliasPort = 40103;  // allow 40103/tcp alias.example.test
constexpr uint16_t kV6Port = 40104;     // allow 40104/tcp v6.example.test
constexpr uint16_t kTcpPort = 40105;    // allow 40105/tcp tcp.example.test

constexpr char kHosts[] =
    "127.201.0.1 api.example.test\n"
    "127.201.0.2 other.example.test\n"
    "127.201.0.3 wild.test\n"
    "127.201.0.4 a.wild.test\n"
    "127.201.0.5 a.b.wild.test\n"
    "127.201.0.6 target.cdn.test\n"
    "127.201.0.7 evilwild.test\n"
    "::1 v6.example.test\n"
    "127.201.0.10 tcp.example.test\n";

// n<i>.wild.test, i < kManyNames, each with an address of its own: every
// connect of ThousandLookupsThenConnectNoneDenied depends on its own lookup.
constexpr int kManyNames = 1000;

std::string ManyAddress(int i) {
  return absl::StrCat("127.204.", i / 250, ".", i % 250 + 1);
}

std::string HostsWithManyNames() {
  std::string hosts = kHosts;
  for (int i = 0; i < kManyNames; ++i) {
    absl::StrAppend(&hosts, ManyAddress(i), " n", i, ".wild.test\n");
  }
  return hosts;
}

// A UDP socket on 127.0.0.1 that asked `server`:53 for api.example.test
// (id 0x7777), its answer still to come: the victim of forged answers. Its
// address in *at; -1 when a step failed.
int VictimWithPendingQuery(const std::string& server, sockaddr_in* at) {
  const int victim = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (victim < 0 ||
      bind(victim, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    if (victim >= 0) close(victim);
    return -1;
  }
  local.sin_port = htons(LocalPort(victim).value_or(0));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(53);
  inet_pton(AF_INET, server.c_str(), &dst.sin_addr);
  const std::vector<uint8_t> q =
      DnsQueryMessage("api.example.test", kDnsTypeA, 0x7777);
  if (sendto(victim, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&dst),
             sizeof(dst)) < 0) {
    close(victim);
    return -1;
  }
  *at = local;
  return victim;
}

class DnsNamesTest : public EgressdTest {
 protected:
  void SetUp() override {
    // A short floor, so that expiry is testable in seconds.
    extra_daemon_args_ = {"--dns_ttl_floor=2"};
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    DnsmasqConfig config;
    config.hosts = HostsWithManyNames();
    config.cnames = {"alias.example.test,target.cdn.test"};
    config.ttl = 1;
    auto d = Dnsmasq::Start(config);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = *std::move(d);
  }
  void TearDown() override {
    dns_.reset();
    EgressdTest::TearDown();
  }

  // The target with the name rules of the constants above and the resolver.
  void AddTargetWithNames(const std::string& mode = "enforce") {
    AddTarget("web", nullptr, mode);
    CtlOk({"allow", "dns", dns_->address()});
    CtlOk({"allow", absl::StrCat(kApiPort, "/tcp"), "api.example.test"});
    CtlOk({"allow", absl::StrCat(kWildPort, "/tcp"), "*.wild.test"});
    CtlOk({"allow", absl::StrCat(kAliasPort, "/tcp"), "alias.example.test"});
    CtlOk({"allow", absl::StrCat(kV6Port, "/tcp"), "v6.example.test"});
    CtlOk({"allow", absl::StrCat(kTcpPort, "/tcp"), "tcp.example.test"});
  }

  int Lookup(const std::string& name, uint16_t port) {
    const std::string server = dns_->address();
    return InCgroup(
        [server, name, port] { return LookupAndConnect(server, name, port); });
  }

  std::unique_ptr<Dnsmasq> dns_;
};

// Nothing is allowed before a lookup; after one, the answer's address is, on
// exactly the rule's ports.
TEST_F(DnsNamesTest, LookupOpensExactlyTheRulesPorts) {
  AddTargetWithNames();
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.201.0.1", kApiPort); }));
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.201.0.1", kApiPort + 50); }));
  // An address the name never resolved to.
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.201.0.9", kApiPort); }));
  // A name no rule allows: its address stays refused.
  EXPECT_DENIED(Lookup("other.example.test", kApiPort));
}

// 1,000 lookups, each followed at once by a connect: none is refused (the
// binding exists before the application reads the answer). Each lookup is
// of a name of its own with an address of its own, refused until then, so
// no connect can pass by an earlier lookup's binding.
TEST_F(DnsNamesTest, ThousandLookupsThenConnectNoneDenied) {
  AddTargetWithNames();
  const std::string server = dns_->address();
  auto results = RunInCgroupMulti(
      cg_->path(),
      [server] {
        int open_before = 0, denied = 0, failed = 0;
        for (int i = 0; i < kManyNames; ++i) {
          const std::string name = absl::StrCat("n", i, ".wild.test");
          if (TcpConnect(ManyAddress(i), kWildPort) != EPERM) ++open_before;
          const int rc = LookupAndConnect(server, name, kWildPort);
          if (rc == EPERM) ++denied;
          if (rc != EPERM && !Allowed(rc)) ++failed;
        }
        return std::vector<int>{open_before, denied, failed};
      },
      absl::Seconds(120));
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ((*results)[0], 0) << "addresses allowed before their lookup";
  EXPECT_EQ((*results)[1], 0) << "connects refused right after a lookup";
  EXPECT_EQ((*results)[2], 0) << "lookups or connects that failed otherwise";
}

// A new address per answer: each one connects.
TEST_F(DnsNamesTest, RotatingAnswersAllConnect) {
  AddTargetWithNames();
  for (int i = 1; i <= 20; ++i) {
    const std::string addr = absl::StrCat("127.202.0.", i);
    ASSERT_TRUE(dns_->SetHosts(absl::StrCat(kHosts, addr, " rot.wild.test\n"),
                               "rot.wild.test", addr)
                    .ok());
    EXPECT_DENIED(InCgroup([addr] { return TcpConnect(addr, kWildPort); }))
        << addr << " before its lookup";
    const int rc = Lookup("rot.wild.test", kWildPort);
    EXPECT_TRUE(Allowed(rc)) << addr << ": " << rc;
    // The connect above went where the answer said: this very address.
    EXPECT_ALLOWED(InCgroup([addr] { return TcpConnect(addr, kWildPort); }));
  }
}

// *.wild.test: any name strictly below wild.test, never wild.test itself
// nor a name that merely ends in the same letters.
TEST_F(DnsNamesTest, WildcardEdges) {
  AddTargetWithNames();
  EXPECT_DENIED(Lookup("wild.test", kWildPort));
  EXPECT_ALLOWED(Lookup("a.wild.test", kWildPort));
  EXPECT_ALLOWED(Lookup("a.b.wild.test", kWildPort));
  EXPECT_DENIED(Lookup("evilwild.test", kWildPort));
}

// A CNAME chain counts for the question; AAAA answers bind IPv6 addresses;
// an answer over TCP counts; an IPv4-mapped connect reaches a learned IPv4
// address.
TEST_F(DnsNamesTest, CnameAaaaTcpAndMapped) {
  AddTargetWithNames();
  EXPECT_ALLOWED(Lookup("alias.example.test", kAliasPort));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.201.0.6", kApiPort); }));

  const std::string server = dns_->address();
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::1", kV6Port); }));
  EXPECT_EQ(InCgroup([server] {
              const DnsQueryResult r =
                  DnsQuery(server, "v6.example.test", kDnsTypeAaaa);
              if (r.error != 0 || r.addresses.empty()) return 1000 + r.error;
              return TcpConnect(r.addresses[0], kV6Port);
            }),
            ECONNREFUSED);

  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.201.0.10", kTcpPort); }));
  EXPECT_EQ(InCgroup([server] {
              const DnsQueryResult r =
                  DnsQuery(server, "tcp.example.test", kDnsTypeA, /*tcp=*/true);
              if (r.error != 0 || r.addresses.empty()) return 1000 + r.error;
              return TcpConnect(r.addresses[0], kTcpPort);
            }),
            ECONNREFUSED);

  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnectDualStack("127.201.0.1", kApiPort); }));
}

// Answers that answer no query of the socket open nothing: from another
// server address, or with another transaction id. The genuine answer to the
// same question does (the control). The forgers are sockets made outside
// the target (another process of the host, or a datagram from off the
// machine): a socket of the target could not send from the resolver's
// address at all (AnswerSentAsTheResolverFromInsideTheTargetIsRefused).
TEST_F(DnsNamesTest, ForgedAnswersOpenNothing) {
  AddTargetWithNames();
  // A second "resolver" the rules allow, where nothing answers: the query
  // stays pending while forgeries arrive.
  const std::string silent = "127.203.0.53";
  CtlOk({"allow", "dns", silent});
  CtlOk({"allow", "udp", "127.0.0.1"});  // the forger reaches the victim
  // The forgers: the right id from another server; the right server with
  // another id. Made here, in the test's own cgroup, and used by the child.
  struct Forgery {
    const char* from;
    uint16_t id;
    const char* addr;
    int fd;
  } forgeries[] = {{"127.203.0.54", 0x7777, "127.204.0.1", -1},
                   {"127.203.0.53", 0x7778, "127.204.0.2", -1}};
  for (Forgery& f : forgeries) {
    f.fd = UdpBound53(f.from);
    ASSERT_GE(f.fd, 0) << f.from << ": " << strerror(errno);
  }
  const std::vector<int> r = [&] {
    auto out = RunInCgroupMulti(cg_->path(), [silent, &forgeries] {
      std::vector<int> res(4, -1);
      sockaddr_in to{};
      const int victim = VictimWithPendingQuery(silent, &to);
      if (victim < 0) return res;
      int delivered = 0;
      for (const Forgery& f : forgeries) {
        const std::vector<uint8_t> a =
            DnsAnswerMessage("api.example.test", f.addr, f.id);
        if (sendto(f.fd, a.data(), a.size(), 0,
                   reinterpret_cast<sockaddr*>(&to),
                   sizeof(to)) == static_cast<ssize_t>(a.size()) &&
            ReceiveAnswer(victim).error == 0) {
          ++delivered;
        }
      }
      res[0] = delivered;
      res[1] = TcpConnect("127.204.0.1", kApiPort);
      res[2] = TcpConnect("127.204.0.2", kApiPort);
      close(victim);
      return res;
    });
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<int>(4, -1);
  }();
  for (Forgery& f : forgeries) close(f.fd);
  EXPECT_EQ(r[0], 2) << "the forgeries must reach the socket";
  EXPECT_DENIED(r[1]);
  EXPECT_DENIED(r[2]);
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
}

// Answers to a query sent to a resolver no rule allows open nothing (audit
// mode lets the query out; enforce then decides).
TEST_F(DnsNamesTest, AnswersOfResolversNotAllowedOpenNothing) {
  AddTarget("web", nullptr, "audit");
  CtlOk({"allow", absl::StrCat(kApiPort, "/tcp"), "api.example.test"});
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));  // audit lets all by
  CtlOk({"mode", "enforce", "--target", "web"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.201.0.1", kApiPort); }));
  // The control: with the resolver allowed, the same lookup opens it.
  CtlOk({"allow", "dns", dns_->address()});
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
}

// An address stays allowed for max(TTL, floor) with nothing open; a
// connection opened before expiry keeps working after it.
TEST_F(DnsNamesTest, ExpiryRefusesNewConnectsButKeepsOpenOnes) {
  auto listener = TcpListener::Create("127.201.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const uint16_t port = (*listener)->port();
  AddTargetWithNames();
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "api.example.test"});
  const std::string server = dns_->address();
  auto r = RunInCgroupMulti(
      cg_->path(),
      [server, port] {
        std::vector<int> res(4, -1);
        const DnsQueryResult q = PrivateGetaddrinfo(server, "api.example.test");
        if (q.error != 0) return res;
        sockaddr_in sa = MakeSockaddrIn("127.201.0.1", port);
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        res[0] = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0
                     ? 0
                     : errno;
        // Bounded: the floor is 2 s, TTL 1 s.
        const absl::Time deadline = absl::Now() + absl::Seconds(10);
        int rc = 0;
        while (absl::Now() < deadline &&
               (rc = TcpConnect("127.201.0.1", port)) != EPERM) {
          absl::SleepFor(absl::Milliseconds(100));
        }
        res[1] = rc;
        const char ping[] = "ping";
        char back[4] = {};
        res[2] = write(fd, ping, 4) == 4 ? 0 : errno;
        res[3] = recv(fd, back, 4, MSG_WAITALL) == 4 ? 0 : errno;
        close(fd);
        return res;
      },
      absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0], 0) << "connect right after the lookup";
  EXPECT_EQ((*r)[1], EPERM) << "a new connect after expiry";
  EXPECT_EQ((*r)[2], 0) << "the open connection still sends";
  EXPECT_EQ((*r)[3], 0) << "and receives";
}

// The flow of a connect that a name rule allowed is explained: sock_ops
// decides it again when it is established (bpf/egress.bpf.c), through the
// binding and with the clock it read for the flow, and finds the name rule.
TEST_F(DnsNamesTest, FlowToALearnedAddressIsExplainedByItsNameRule) {
  auto listener =
      TcpListener::Create("127.201.0.1", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const uint16_t port = (*listener)->port();
  AddTargetWithNames();
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "api.example.test"});
  const std::string server = dns_->address();
  ASSERT_EQ(InCgroup([server, port] {
              const DnsQueryResult q =
                  PrivateGetaddrinfo(server, "api.example.test");
              if (q.error != 0) return EHOSTUNREACH;
              return TcpConnect("127.201.0.1", port);
            }),
            0);
  AwaitFlowsClosed("web", 1);
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["flows_opened"], 1);
  EXPECT_EQ(c["flows_unexplained"], 0);
  // Its records name the rule: the name rule, not "no match".
  nlohmann::json flows = nlohmann::json::array();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (flows.size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    CommandResult r =
        Ctl({"events", "--target", "web", "--last", "1000", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    flows = nlohmann::json::array();
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_discarded() && e.contains("flow")) flows.push_back(e);
    }
  }
  ASSERT_EQ(flows.size(), 2u) << flows.dump(2);
  for (const auto& e : flows) {
    EXPECT_EQ(e["verdict"], "ALLOWED") << e.dump();
    EXPECT_EQ(e["reason"], "MATCHED_ALLOW") << e.dump();
    EXPECT_NE(e["rule_id"], 0) << e.dump();
  }
}

// A name rule of one port is in exact_rules (family NAME, the pattern id in
// place of an address; policy/compile_exact.h): a learned address is
// decided by that one probe, with the precedence of bpf/lib/names.h, and
// the key leaves the active set with the rule.
TEST_F(DnsNamesTest, NameRuleOfOnePortIsDecidedByTheExactHash) {
  AddTargetWithNames();
  // other.example.test (127.201.0.2): an address allow, and a name deny of
  // the same port that its answers bring.
  constexpr uint16_t kDenyPort = 40106;
  CtlOk({"allow", absl::StrCat(kDenyPort, "/tcp"), "127.201.0.2"});
  CtlOk({"deny", absl::StrCat(kDenyPort, "/tcp"), "other.example.test"});
  const uint32_t id = CtlJson({"status"})["targets"][0]["id"].get<uint32_t>();
  // The verdicts of the active set's name keys of `name` on tcp `port`.
  auto name_keys = [&](const std::string& name, uint16_t port) {
    const uint32_t ruleset = ActiveRuleset(id);
    uint8_t want[16] = {};
    const uint64_t pattern = policy::NamePatternId(name);
    std::memcpy(want, &pattern, sizeof(pattern));
    std::vector<int> verdicts;
    for (const auto& [k, v] : ExactRulesEntries()) {
      if (k.ruleset == ruleset && k.family == EGRESS_FAMILY_NAME &&
          k.proto == IPPROTO_TCP && ntohs(k.port) == port &&
          std::memcmp(k.addr, want, sizeof(want)) == 0) {
        verdicts.push_back(v.verdict);
      }
    }
    return verdicts;
  };
  EXPECT_EQ(name_keys("api.example.test", kApiPort),
            std::vector<int>{EGRESS_VERDICT_ALLOW});
  EXPECT_TRUE(name_keys("api.example.test", kApiPort + 50).empty());
  EXPECT_EQ(name_keys("other.example.test", kDenyPort),
            std::vector<int>{EGRESS_VERDICT_DENY});

  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  // Another port of the same name: no rule.
  EXPECT_DENIED(Lookup("api.example.test", kApiPort + 50));
  // A name deny refuses what an address rule allows, once learned.
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.201.0.2", kDenyPort); }));
  EXPECT_DENIED(Lookup("other.example.test", kDenyPort));
  // An explicit address deny wins over the name allow.
  CtlOk({"deny", absl::StrCat(kApiPort, "/tcp"), "127.201.0.1"});
  EXPECT_DENIED(Lookup("api.example.test", kApiPort));
  CtlOk({"delete", "deny", absl::StrCat(kApiPort, "/tcp"), "127.201.0.1"});
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  // Without the rule the key is gone and the learned address refused.
  CtlOk(
      {"delete", "allow", absl::StrCat(kApiPort, "/tcp"), "api.example.test"});
  EXPECT_TRUE(name_keys("api.example.test", kApiPort).empty());
  EXPECT_DENIED(Lookup("api.example.test", kApiPort));
}

// An address deny in the tries (a network, or every port of a host) wins
// over a name allow too, though a learned address whose name entry says
// the tries hold no deny for it is decided without them (bpf/lib/names.h,
// names__decide_dest): the name entries of the active set carry the deny
// summary of that set (abi.h, egress_rule_value.flags), rewritten when a
// deny comes or goes, so adding and removing the deny flips the verdict.
TEST_F(DnsNamesTest, AddressDenyInTheTriesWinsOverANameAllow) {
  AddTargetWithNames();
  const uint32_t id = CtlJson({"status"})["targets"][0]["id"].get<uint32_t>();
  // The value of the active set's name key of api.example.test on kApiPort.
  auto api_value = [&]() -> std::optional<egress_rule_value> {
    const uint32_t ruleset = ActiveRuleset(id);
    uint8_t want[16] = {};
    const uint64_t pattern = policy::NamePatternId("api.example.test");
    std::memcpy(want, &pattern, sizeof(pattern));
    for (const auto& [k, v] : ExactRulesEntries()) {
      if (k.ruleset == ruleset && k.family == EGRESS_FAMILY_NAME &&
          k.proto == IPPROTO_TCP && ntohs(k.port) == kApiPort &&
          std::memcmp(k.addr, want, sizeof(want)) == 0) {
        return v;
      }
    }
    return std::nullopt;
  };
  const uint16_t bit127 = static_cast<uint16_t>(1u << (127 % 16));
  auto expect_summary = [&](uint16_t octets) {
    const std::optional<egress_rule_value> v = api_value();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->flags & EGRESS_RULE_F_DENY_SUMMARY,
              EGRESS_RULE_F_DENY_SUMMARY);
    EXPECT_EQ(v->v4_deny_octets & bit127, octets);
  };
  expect_summary(0);
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  // A deny of another first octet leaves 127's out of the summary.
  CtlOk({"deny", "any", "10.0.0.0/8"});
  expect_summary(0);
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  const std::vector<std::vector<std::string>> denies = {
      {"deny", absl::StrCat(kApiPort, "/tcp"), "127.201.0.0/24"},  // a network
      {"deny", "tcp", "127.201.0.1"},  // every port of the host
  };
  for (const std::vector<std::string>& deny : denies) {
    SCOPED_TRACE(absl::StrJoin(deny, " "));
    CtlOk(deny);
    expect_summary(bit127);
    EXPECT_DENIED(Lookup("api.example.test", kApiPort));
    std::vector<std::string> del = {"delete"};
    del.insert(del.end(), deny.begin(), deny.end());
    CtlOk(del);
    expect_summary(0);
    EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  }
}

// A socket of the target cannot answer the target's own queries as its
// resolver: a datagram from port 53 of an address the rules allow as a
// resolver is refused at send (EPERM), whether the socket took the address
// while nothing else held it (a resolver that is down) or names it per
// datagram with IP_PKTINFO while the real resolver runs; nothing it claims
// is bound. The same datagram from port 53 of another address goes out
// (the check is about the resolver's address, not about port 53), and the
// refusals are recorded and counted.
TEST_F(DnsNamesTest, AnswerSentAsTheResolverFromInsideTheTargetIsRefused) {
  AddTargetWithNames();
  const std::string silent = "127.203.0.53";  // allowed, nothing answers
  CtlOk({"allow", "dns", silent});
  CtlOk({"allow", "udp", "127.0.0.1"});  // the forger reaches the victim
  const std::string running = dns_->address();
  auto out = RunInCgroupMulti(cg_->path(), [silent, running] {
    std::vector<int> res(6, -1);
    sockaddr_in to{};
    const int victim = VictimWithPendingQuery(silent, &to);
    if (victim < 0) return res;
    // 1. Bound to the silent resolver's own address.
    const std::vector<uint8_t> a1 =
        DnsAnswerMessage("api.example.test", "127.204.0.4", 0x7777);
    const int s1 = UdpBound53(silent);
    if (s1 < 0) return res;
    res[0] = sendto(s1, a1.data(), a1.size(), 0,
                    reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0
                 ? errno
                 : 0;
    close(s1);
    // 2. Bound elsewhere, the running resolver's address per datagram.
    const int s2 = UdpBound53("127.0.0.9");
    if (s2 < 0) return res;
    const std::vector<uint8_t> a2 =
        DnsAnswerMessage("api.example.test", "127.204.0.5", 0x7777);
    in_addr running_addr{};
    inet_pton(AF_INET, running.c_str(), &running_addr);
    res[1] = UdpSendFromSource(
                 s2, reinterpret_cast<const sockaddr*>(&to), sizeof(to),
                 running_addr,
                 absl::string_view(reinterpret_cast<const char*>(a2.data()),
                                   a2.size()))
                 ? 0
                 : errno;
    // 3. The control: port 53 of an address no rule allows as a resolver.
    res[2] = sendto(s2, a2.data(), a2.size(), 0,
                    reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0
                 ? errno
                 : 0;
    res[3] = ReceiveAnswer(victim, 1000).error;
    close(s2);
    res[4] = TcpConnect("127.204.0.4", kApiPort);
    res[5] = TcpConnect("127.204.0.5", kApiPort);
    close(victim);
    return res;
  });
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<int>& r = *out;
  EXPECT_EQ(r[0], EPERM) << "bound to the resolver's address";
  // Refused at sendmsg4 already, as a source the socket is not bound to
  // (udp_pktinfo_source_test.cc); the packet hook would drop it next.
  EXPECT_EQ(r[1], EPERM) << "the running resolver's address by IP_PKTINFO";
  EXPECT_EQ(r[2], 0) << "port 53 of another address goes out";
  EXPECT_EQ(r[3], 0) << "the control datagram arrives";
  EXPECT_DENIED(r[4]);
  EXPECT_DENIED(r[5]);
  const std::vector<nlohmann::json> recs =
      Records({"--target", "web", "--verdict", "deny"}, 2);
  int refused = 0, borrowed = 0;
  for (const nlohmann::json& e : recs) {
    if (e.value("reason", "") == "RESOLVER_SOURCE_BLOCKED") ++refused;
    if (e.value("reason", "") == "NONLOCAL_SOURCE_BLOCKED") ++borrowed;
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(borrowed, 1);
  const nlohmann::json dns = TargetStatus("web")["dns"];
  EXPECT_EQ(dns.value("resolver_source_refused", uint64_t{0}), 1u) << dns;
  // The genuine resolver's answers still teach the kernel.
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
}

// The refusal is about answers delivered on this host: a socket of the
// target bound to port 53 of an address its rules let it query still sends
// to another host (a test host in a namespace, over a veth), while the same
// socket is refused towards a socket on this host.
TEST_F(DnsNamesTest, ResolverAddressOfTheTargetStillAnswersOtherHosts) {
  AddTargetWithNames();
  auto ns = TestNetns::Create("dnssrc");
  ASSERT_TRUE(ns.ok()) << ns.status();
  const std::string self = (*ns)->host_addr4();
  const std::string peer = (*ns)->ns_addr4();
  CtlOk({"allow", "dns", self});  // the host's own veth address
  CtlOk({"allow", "udp", peer});
  CtlOk({"allow", "udp", "127.0.0.1"});
  auto out = RunInCgroupMulti(cg_->path(), [self, peer] {
    std::vector<int> res(2, -1);
    const int s = UdpBound53(self);
    if (s < 0) return res;
    const char msg[] = "answer";
    sockaddr_in away{};
    away.sin_family = AF_INET;
    away.sin_port = htons(9);
    inet_pton(AF_INET, peer.c_str(), &away.sin_addr);
    res[0] = sendto(s, msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&away),
                    sizeof(away)) < 0
                 ? errno
                 : 0;
    sockaddr_in here{};
    here.sin_family = AF_INET;
    here.sin_port = htons(9);
    here.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    res[1] = sendto(s, msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&here),
                    sizeof(here)) < 0
                 ? errno
                 : 0;
    close(s);
    return res;
  });
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 0) << "to another host";
  EXPECT_EQ((*out)[1], EPERM) << "to a socket on this host";
  EXPECT_TRUE((*ns)->Remove().ok());
}

// An answer a process of the target gets in a network namespace of its
// own, where its loopback holds the resolver's address and anything can
// answer from there, binds the name in that namespace only: the address it
// claims stays refused in the namespace the target's traffic leaves by.
// The answer here comes from a socket outside the target (a tun device or
// a socket passed in would do the same), so that only the namespace keeps
// it from counting.
TEST_F(DnsNamesTest, AnswerLearnedInAnotherNetnsOpensNothingHere) {
  AddTargetWithNames();
  auto ns = TestNetns::Create("dnsns");
  ASSERT_TRUE(ns.ok()) << ns.status();
  const std::string resolver = dns_->address();
  auto fake = (*ns)->BindSocketInNetns(SOCK_DGRAM, resolver, 53);
  ASSERT_TRUE(fake.ok()) << fake.status();
  // The fake resolver in that namespace.
  std::thread answer = AnswerOneQuery(fake->get(), [](uint16_t id) {
    return DnsAnswerMessage("api.example.test", "127.204.0.7", id);
  });
  const std::string ns_path = absl::StrCat("/var/run/netns/", (*ns)->name());
  auto out = RunInCgroupMulti(cg_->path(), [resolver, ns_path] {
    std::vector<int> res(4, -1);
    const int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int other = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (host < 0 || other < 0 || setns(other, CLONE_NEWNET) != 0) return res;
    const DnsQueryResult q = DnsQuery(resolver, "api.example.test");
    res[0] = q.error;
    res[1] = q.addresses == std::vector<std::string>{"127.204.0.7"} ? 1 : 0;
    res[2] = TcpConnect("127.204.0.7", kApiPort);  // there
    if (setns(host, CLONE_NEWNET) != 0) return res;
    res[3] = TcpConnect("127.204.0.7", kApiPort);  // here
    return res;
  });
  answer.join();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0], 0) << "the lookup in the other namespace";
  EXPECT_EQ((*out)[1], 1) << "answered by the fake resolver";
  EXPECT_ALLOWED((*out)[2]);
  EXPECT_DENIED((*out)[3]);
  EXPECT_TRUE((*ns)->Remove().ok());
}

// Over TCP only a message's own start is read as one. A resolver's answer
// whose second segment begins inside the message, with bytes that read as
// a length and an answer to another pending query (the text of a TXT
// record would do), binds nothing; the genuine answer after it, and one
// whose length comes alone in a segment of its own, bind their addresses.
TEST_F(DnsNamesTest, TcpSegmentsInsideAMessageAreNeverReadAsOne) {
  AddTargetWithNames();
  const std::string resolver = "127.203.0.60";
  CtlOk({"allow", "dns", resolver});
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in la{};
  la.sin_family = AF_INET;
  la.sin_port = htons(53);
  inet_pton(AF_INET, resolver.c_str(), &la.sin_addr);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof(la)), 0)
      << strerror(errno);
  ASSERT_EQ(listen(lfd, 4), 0);
  auto framed = [](const std::vector<uint8_t>& m) {
    std::vector<uint8_t> out = {static_cast<uint8_t>(m.size() >> 8),
                                static_cast<uint8_t>(m.size())};
    out.insert(out.end(), m.begin(), m.end());
    return out;
  };
  // The resolver: reads three queries, then writes (1) a message for id
  // 0x0101 in two segments, the second starting with a framed answer for
  // id 0x0202 claiming 127.204.0.3; (2) the genuine answer to 0x0202; (3)
  // the answer to 0x0303 as its length, then its body.
  std::thread server([lfd, framed] {
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return;
    const int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    const int on = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    std::vector<uint8_t> in;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    int messages = 0;
    while (messages < 3 && absl::Now() < deadline) {
      pollfd q{c, POLLIN, 0};
      if (poll(&q, 1, 1000) != 1) continue;
      uint8_t buf[512];
      const ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      in.insert(in.end(), buf, buf + n);
      messages = 0;
      for (size_t at = 0; at + 2 <= in.size();
           at += 2 + (in[at] << 8 | in[at + 1])) {
        if (at + 2 + (in[at] << 8 | in[at + 1]) <= in.size()) ++messages;
      }
    }
    const std::vector<uint8_t> fake = framed(
        DnsAnswerMessage("api.example.test", "127.204.0.3", 0x0202, 600));
    std::vector<uint8_t> first =
        DnsMessageBuilder().Id(0x0101).Question("txt.example.test").Build();
    const size_t split = first.size() + 2;  // where the second segment begins
    first.insert(first.end(), fake.begin(), fake.end());
    const std::vector<uint8_t> m1 = framed(first);
    const std::vector<uint8_t> m2 = framed(
        DnsAnswerMessage("api.example.test", "127.201.0.1", 0x0202, 600));
    const std::vector<uint8_t> m3 =
        DnsAnswerMessage("tcp.example.test", "127.201.0.10", 0x0303, 600);
    const uint8_t m3len[2] = {static_cast<uint8_t>(m3.size() >> 8),
                              static_cast<uint8_t>(m3.size())};
    auto put = [c](const void* d, size_t n) {
      (void)!write(c, d, n);
      absl::SleepFor(absl::Milliseconds(30));  // one segment each
    };
    put(m1.data(), split);
    put(m1.data() + split, m1.size() - split);
    put(m2.data(), m2.size());
    put(m3len, 2);
    put(m3.data(), m3.size());
    pollfd q{c, POLLIN, 0};
    poll(&q, 1, 5000);  // until the client closes
    close(c);
  });
  auto out = RunInCgroupMulti(cg_->path(), [resolver, framed] {
    std::vector<int> res(4, -1);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(53);
    inet_pton(AF_INET, resolver.c_str(), &sa.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
      return res;
    // One query per segment: a segment's first message is the one that
    // is remembered.
    for (const auto& [name, id] : std::vector<std::pair<const char*, uint16_t>>{
             {"txt.example.test", 0x0101},
             {"api.example.test", 0x0202},
             {"tcp.example.test", 0x0303}}) {
      const std::vector<uint8_t> m =
          framed(DnsQueryMessage(name, kDnsTypeA, id));
      if (write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size()))
        return res;
      absl::SleepFor(absl::Milliseconds(30));
    }
    // Everything the resolver writes (bounded).
    size_t got = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    uint8_t buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 500) != 1) {
        if (got > 0) break;
        continue;
      }
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got += n;
    }
    res[0] = static_cast<int>(got);
    close(fd);
    res[1] = TcpConnect("127.204.0.3", kApiPort);
    res[2] = TcpConnect("127.201.0.1", kApiPort);
    res[3] = TcpConnect("127.201.0.10", kTcpPort);
    return res;
  });
  server.join();
  close(lfd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_GT((*out)[0], 0) << "the answers must arrive";
  EXPECT_DENIED((*out)[1]);
  EXPECT_ALLOWED((*out)[2]);
  EXPECT_ALLOWED((*out)[3]);
  const nlohmann::json dns = TargetStatus("web")["dns"];
  EXPECT_GE(dns.value("ignored_stream", uint64_t{0}), 1u) << dns;
}

// An AAAA answer that holds an IPv4-mapped address (::ffff:a.b.c.d) allows
// that IPv4 address, which is where a connect to it goes (connects decide
// mapped destinations as IPv4), from an IPv4 socket and a dual-stack one.
TEST_F(DnsNamesTest, MappedAaaaAnswerAllowsItsIpv4Address) {
  AddTargetWithNames();
  constexpr uint16_t kMappedPort = 40106;
  const std::string resolver = "127.203.0.61";
  CtlOk({"allow", "dns", resolver});
  CtlOk({"allow", absl::StrCat(kMappedPort, "/tcp"), "mapped.example.test"});
  const int fd = UdpBound53(resolver);  // outside the target
  ASSERT_GE(fd, 0) << strerror(errno);
  std::thread answer = AnswerOneQuery(fd, [](uint16_t id) {
    return DnsMessageBuilder()
        .Id(id)
        .Question("mapped.example.test", kDnsTypeAaaa)
        .Answer(DnsAaaa("mapped.example.test", "::ffff:127.204.0.9", 600))
        .Build();
  });
  auto out = RunInCgroupMulti(cg_->path(), [resolver] {
    std::vector<int> res(4, -1);
    res[0] = TcpConnect("127.204.0.9", kMappedPort);
    const DnsQueryResult q =
        DnsQuery(resolver, "mapped.example.test", kDnsTypeAaaa);
    res[1] = q.error;
    res[2] = TcpConnect("127.204.0.9", kMappedPort);
    res[3] = TcpConnectDualStack("127.204.0.9", kMappedPort);
    return res;
  });
  answer.join();
  close(fd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_DENIED((*out)[0]);
  EXPECT_EQ((*out)[1], 0) << "the AAAA lookup";
  EXPECT_ALLOWED((*out)[2]);
  EXPECT_ALLOWED((*out)[3]);
}

// egressd is not in the path: SIGKILLed, lookups keep teaching the kernel,
// old and new names work; a restarted egressd adopts it all.
TEST_F(DnsNamesTest, KilledDaemonLearningGoesOn) {
  AddTargetWithNames();
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  StopDaemon(SIGKILL);
  EXPECT_ALLOWED(Lookup("api.example.test", kApiPort));
  EXPECT_ALLOWED(Lookup("a.wild.test", kWildPort));
  EXPECT_DENIED(Lookup("other.example.test", kApiPort));
  StartDaemon();
  EXPECT_ALLOWED(Lookup("a.b.wild.test", kWildPort));
  EXPECT_DENIED(Lookup("wild.test", kWildPort));
  nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  EXPECT_EQ(rules.size(), 6u) << rules;
}

}  // namespace
}  // namespace egress::testing
