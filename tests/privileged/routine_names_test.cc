// The routine of an operator for an application that reaches its API by name:
// audit mode learns, from the application's own DNS answers (audit learning,
// docs/dns.md), which name each destination was resolved from; `egressctl
// suggest` proposes domainNames rules and a rule for exactly the resolver it
// used; applied (enforce), the application keeps working while the name
// moves to new addresses, and an attacker in the same cgroup reaching for an
// address the name never had is refused.
//
// The resolver is a real dnsmasq on a loopback address of the test's own
// (tests/testing/dnsmasq.h); the application looks the name up through glibc
// with a private resolv.conf (a mount namespace per child: never the
// machine's resolver) and connects to the first IPv4 address of the answer,
// where a TCP listener of the test accepts.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/dns_client.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/file_util.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"

namespace egress::testing {
namespace {

constexpr char kName[] = "api.routine.test";
// Another name of a virtual host on the name's first address.
constexpr char kOther[] = "www.other.test";
// What the name resolves to: two addresses first, then a third.
constexpr char kFirst[] = "127.211.0.1";
constexpr char kSecond[] = "127.211.0.2";
constexpr char kRotated[] = "127.211.0.3";
// An address the name never has, where a listener would accept too.
constexpr char kHardCoded[] = "127.211.0.9";

class RoutineNamesTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // One port on every address of the name (and the attacker's).
    auto first = TcpListener::Create(kFirst, 0, TcpListener::Mode::kDiscard);
    ASSERT_TRUE(first.ok()) << first.status();
    port_ = (*first)->port();
    listeners_.push_back(*std::move(first));
    for (const char* addr : {kSecond, kRotated, kHardCoded}) {
      auto l = TcpListener::Create(addr, port_, TcpListener::Mode::kDiscard);
      ASSERT_TRUE(l.ok()) << addr << ": " << l.status();
      listeners_.push_back(*std::move(l));
    }
    DnsmasqConfig config;
    config.hosts =
        absl::StrCat(kFirst, " ", kName, "\n", kSecond, " ", kName, "\n");
    config.ttl = 1;
    auto d = Dnsmasq::Start(config);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = *std::move(d);
  }
  void TearDown() override {
    dns_.reset();
    listeners_.clear();
    EgressdTest::TearDown();
  }

  int AppStep() {
    const std::string server = dns_->address();
    const uint16_t port = port_;
    // The application's step (dns_client.h): look the name up through glibc
    // with a private resolv.conf, connect to the first IPv4 address.
    return InCgroup(
        [server, port] { return LookupAndConnect(server, kName, port); });
  }

  int Accepted() const {
    int n = 0;
    for (const auto& l : listeners_) n += l->accepted();
    return n;
  }
  // Accepted() once it reaches `n` (listener threads count asynchronously),
  // or after 2 s.
  int AcceptedAtLeast(int n) const {
    const absl::Time deadline = absl::Now() + absl::Seconds(2);
    while (Accepted() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return Accepted();
  }

  std::string PolicyPath() {
    return state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
  }

  uint16_t port_ = 0;
  std::vector<std::unique_ptr<TcpListener>> listeners_;
  std::unique_ptr<Dnsmasq> dns_;
};

TEST_F(RoutineNamesTest, AuditSuggestsNamesThatKeepWorkingAsAddressesRotate) {
  AddTarget("web", nullptr, "audit");

  // 1. Audit: the application works; egressd learns the name and resolver.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(AppStep(), 0);
  EXPECT_EQ(AcceptedAtLeast(3), 3);

  // 2. The suggestion. egressd drains records every 50 ms: wait (bounded)
  // until it names the name and the resolver.
  std::string seen;
  const absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by) {
    seen = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(seen, kName) &&
        absl::StrContains(seen, dns_->address())) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto run = RunCommand({"sh", "-c",
                         "exec \"$0\" --socket \"$1\" suggest --target web "
                         "--since 10m > \"$2\"",
                         EGRESS_EGRESSCTL_PATH, socket_path_, PolicyPath()},
                        absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->output;
  const std::string text = ReadFile(PolicyPath()).value_or("");
  auto policies = policy::LoadPolicies(PolicyPath());
  ASSERT_TRUE(policies.ok()) << policies.status() << "\n" << text;
  ASSERT_EQ(policies->size(), 1u);
  const policy::Policy& p = (*policies)[0];
  EXPECT_EQ(p.mode, policy::Mode::kEnforce);
  // The API by name, on its port only; the resolver by address, 53/udp (and
  // 53/tcp only if it was used); nothing by the name's addresses.
  int name_rules = 0, resolver_rules = 0;
  for (const policy::Rule& r : p.rules) {
    ASSERT_EQ(r.action, policy::Action::kAllow) << text;
    // glibc asks nscd first (a unix socket): a real dependency, kept.
    if (!r.unix_paths.empty()) continue;
    if (!r.names.empty()) {
      ++name_rules;
      EXPECT_EQ(r.names, std::vector<std::string>{kName}) << text;
      EXPECT_TRUE(r.destinations.empty()) << text;
      ASSERT_EQ(r.ports.size(), 1u) << text;
      EXPECT_EQ(r.ports[0].proto, policy::Proto::kTcp);
      EXPECT_EQ(r.ports[0].lo, port_);
      EXPECT_EQ(r.ports[0].hi, port_);
      continue;
    }
    for (const policy::Cidr& c : r.destinations) {
      EXPECT_EQ(c.ToString(), dns_->address())
          << "only the resolver by address:\n"
          << text;
    }
    for (const policy::PortProto& pp : r.ports) {
      EXPECT_EQ(pp.lo, 53) << text;
      EXPECT_EQ(pp.hi, 53) << text;
    }
    ++resolver_rules;
  }
  EXPECT_EQ(name_rules, 1) << text;
  EXPECT_GE(resolver_rules, 1) << text;

  // 3. Apply: enforced with the suggested rules.
  CtlOk({"apply", "-f", PolicyPath()});
  nlohmann::json targets = CtlJson({"target", "list"})["targets"];
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0]["mode"], "enforce") << targets.dump();

  // 4. The application keeps working, also once the name has moved.
  const int before = Accepted();
  EXPECT_EQ(AppStep(), 0);
  EXPECT_EQ(AppStep(), 0);
  ASSERT_TRUE(
      dns_->SetHosts(absl::StrCat(kRotated, " ", kName, "\n"), kName, kRotated)
          .ok());
  EXPECT_EQ(AppStep(), 0) << "after the name moved to " << kRotated;
  EXPECT_EQ(AppStep(), 0);
  EXPECT_TRUE(listeners_[2]->WaitForAccepted(2)) << "connected to " << kRotated;
  EXPECT_EQ(AcceptedAtLeast(before + 4), before + 4);

  // 5. An attacker in the same cgroup, with an address of its own on the
  // application's port, and the name's address on another port.
  const uint16_t port = port_;
  const uint16_t other_port = port == 65535 ? 1 : port + 1;
  EXPECT_DENIED(InCgroup([port] { return TcpConnect(kHardCoded, port); }));
  EXPECT_DENIED(
      InCgroup([other_port] { return TcpConnect(kRotated, other_port); }));
  EXPECT_EQ(listeners_[3]->accepted(), 0);
}

// getaddrinfo() of a name and a service sorts the name's two addresses (RFC
// 6724) by connecting a UDP socket to each, on the service's port, and reads
// the source address it would get; it sends nothing there. The suggestion
// keeps the lookup's own traffic (the resolver, 53/udp over a connected
// socket) and the application's TCP connection, and no UDP rule for the
// name or its addresses.
TEST_F(RoutineNamesTest, AddressSortingOfALookupSuggestsNoRule) {
  AddTarget("web", nullptr, "audit");
  const std::string server = dns_->address();
  const uint16_t port = port_;
  EXPECT_EQ(InCgroup([server, port] {
              const DnsQueryResult r = PrivateGetaddrinfo(server, kName, port);
              if (r.error != 0) return 1000 + r.error;
              // Both addresses, or glibc had nothing to sort.
              if (r.addresses.size() != 2) return 2000;
              return TcpConnect(r.addresses[0], port);
            }),
            0);
  EXPECT_EQ(AcceptedAtLeast(1), 1);
  std::string text;
  const absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by) {
    text = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(text, kName) && absl::StrContains(text, server)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::ofstream(PolicyPath()) << text;
  auto policies = policy::LoadPolicies(PolicyPath());
  ASSERT_TRUE(policies.ok()) << policies.status() << "\n" << text;
  ASSERT_EQ(policies->size(), 1u);
  bool resolver = false, api = false;
  for (const policy::Rule& r : (*policies)[0].rules) {
    if (!r.unix_paths.empty()) continue;  // glibc asks nscd first
    for (const policy::PortProto& pp : r.ports) {
      if (pp.proto == policy::Proto::kUdp) {
        EXPECT_EQ(pp.lo, 53) << "a UDP rule past the resolver:\n" << text;
        EXPECT_EQ(pp.hi, 53) << text;
        EXPECT_TRUE(r.names.empty()) << text;
        for (const policy::Cidr& c : r.destinations) {
          EXPECT_EQ(c.ToString(), server) << text;
          resolver = true;
        }
      } else if (pp.proto == policy::Proto::kTcp && pp.lo == port) {
        api = true;
      }
    }
  }
  EXPECT_TRUE(resolver) << "no resolver rule:\n" << text;
  EXPECT_TRUE(api) << "no rule for the connection made:\n" << text;
}

// Two names on one address (a virtual host): the application looks up its
// API, the other name is looked up after it, and then the connect comes.
// The suggestion allows both names, so the application's own lookup still
// connects once the policy is enforced (with one name per address, the last
// looked up won, and the API's connect was refused).
TEST_F(RoutineNamesTest, AnAddressOfTwoNamesIsSuggestedUnderBoth) {
  ASSERT_TRUE(dns_->SetHosts(absl::StrCat(kFirst, " ", kName, "\n", kFirst, " ",
                                          kOther, "\n"),
                             kOther, kFirst)
                  .ok());
  AddTarget("web", nullptr, "audit");
  const std::string server = dns_->address();
  const uint16_t port = port_;
  EXPECT_EQ(InCgroup([server, port] {
              if (DnsQuery(server, kName).error != 0) return -1;
              if (DnsQuery(server, kOther).error != 0) return -1;
              return TcpConnect(kFirst, port);
            }),
            0);
  std::string seen;
  const absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by && !absl::StrContains(seen, kOther)) {
    absl::SleepFor(absl::Milliseconds(50));
    seen = CtlOk({"suggest", "--target", "web"});
  }
  EXPECT_TRUE(absl::StrContains(seen, kName)) << seen;
  EXPECT_TRUE(absl::StrContains(seen, kOther)) << seen;
  std::ofstream(PolicyPath()) << seen;
  CtlOk({"apply", "-f", PolicyPath()});
  EXPECT_EQ(AppStep(), 0) << "the API by its own name, enforced";
}

// Audit learning keeps the anti-forgery rule of bindings: answers that do not
// match a query the target sent (another server, another transaction id)
// name nothing, so the addresses they carry stay address rules.
TEST_F(RoutineNamesTest, ForgedAnswersNameNothingInAudit) {
  AddTarget("web", nullptr, "audit");
  const uint16_t port = port_;
  const int delivered = InCgroup([port] {
    const int victim = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (victim < 0 ||
        bind(victim, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      return -1;
    }
    const uint16_t victim_port = LocalPort(victim).value_or(0);
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(53);
    inet_pton(AF_INET, "127.213.0.53", &server.sin_addr);  // nobody answers
    const std::vector<uint8_t> q = DnsQueryMessage(kName, kDnsTypeA, 0x7777);
    if (sendto(victim, q.data(), q.size(), 0,
               reinterpret_cast<sockaddr*>(&server), sizeof(server)) < 0) {
      return -1;
    }
    struct Forgery {
      const char* from;
      uint16_t id;
      const char* addr;
    } forgeries[] = {{"127.213.0.54", 0x7777, kFirst},
                     {"127.213.0.53", 0x7778, kSecond}};
    int n = 0;
    for (const Forgery& f : forgeries) {
      const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in from{};
      from.sin_family = AF_INET;
      from.sin_port = htons(53);
      inet_pton(AF_INET, f.from, &from.sin_addr);
      sockaddr_in to = local;
      to.sin_port = htons(victim_port);
      const std::vector<uint8_t> a = DnsAnswerMessage(kName, f.addr, f.id);
      if (bind(s, reinterpret_cast<sockaddr*>(&from), sizeof(from)) == 0 &&
          sendto(s, a.data(), a.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof(to)) == static_cast<ssize_t>(a.size()) &&
          ReceiveAnswer(victim).error == 0 && TcpConnect(f.addr, port) == 0) {
        ++n;
      }
      close(s);
    }
    close(victim);
    return n;
  });
  ASSERT_EQ(delivered, 2) << "both forgeries must reach the socket, and the "
                             "connects to their addresses pass (audit)";
  std::string seen;
  const absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by) {
    seen = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(seen, kFirst) && absl::StrContains(seen, kSecond)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(absl::StrContains(seen, absl::StrCat("cidr: ", kFirst, "/32")))
      << seen;
  EXPECT_TRUE(absl::StrContains(seen, absl::StrCat("cidr: ", kSecond, "/32")))
      << seen;
  EXPECT_FALSE(absl::StrContains(seen, "domainNames")) << seen;
  EXPECT_FALSE(absl::StrContains(seen, kName)) << seen;
}

// The resolver's own address, by name; a database reached as a literal.
constexpr char kResolverName[] = "ns.resolver.test";
constexpr char kDb[] = "db.other.test";

// Bindings of 1 s (--dns_ttl_floor 1, dnsmasq's TTL 1): a connect 3 s
// after the lookup comes after its binding, as a literal's would.
class RoutineNamesShortTtlTest : public RoutineNamesTest {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {"--dns_ttl_floor=1"};
    RoutineNamesTest::SetUp();
  }
};

// The target looks up the resolver's own address (ns.resolver.test) and a
// database it never connects to by name, resolves its API and connects
// there, and later reaches the database's address as a literal. The
// suggestion keeps the resolver and the literal as addresses, so once
// applied the lookups and the literal connect still work.
TEST_F(RoutineNamesShortTtlTest, TheResolverAndALiteralStayAddresses) {
  const std::string server = dns_->address();
  ASSERT_TRUE(
      dns_->SetHosts(absl::StrCat(server, " ", kResolverName, "\n", kFirst, " ",
                                  kName, "\n", kHardCoded, " ", kDb, "\n"),
                     kDb, kHardCoded)
          .ok());
  AddTarget("web", nullptr, "audit");
  const uint16_t port = port_;
  EXPECT_EQ(InCgroup([server, port] {
              if (DnsQuery(server, kResolverName).error != 0) return -1;
              if (DnsQuery(server, kDb).error != 0) return -2;
              return LookupAndConnect(server, kName, port);
            }),
            0);
  absl::SleepFor(absl::Seconds(3));  // the bindings (1 s) are gone
  EXPECT_EQ(InCgroup([port] { return TcpConnect(kHardCoded, port); }), 0);
  std::string seen;
  const absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by) {
    seen = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(seen, kName) && absl::StrContains(seen, server) &&
        (absl::StrContains(seen, kHardCoded) || absl::StrContains(seen, kDb))) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(absl::StrContains(seen, kResolverName)) << seen;
  EXPECT_FALSE(absl::StrContains(seen, kDb)) << seen;
  EXPECT_TRUE(absl::StrContains(seen, absl::StrCat("cidr: ", server, "/32")))
      << seen;
  EXPECT_TRUE(
      absl::StrContains(seen, absl::StrCat("cidr: ", kHardCoded, "/32")))
      << seen;
  std::ofstream(PolicyPath()) << seen;
  CtlOk({"apply", "-f", PolicyPath()});
  // Enforced: the lookup (the resolver by address), the API by name, and
  // the literal by address.
  EXPECT_EQ(AppStep(), 0) << seen;
  EXPECT_EQ(InCgroup([port] { return TcpConnect(kHardCoded, port); }), 0)
      << seen;
}

}  // namespace
}  // namespace egress::testing
