// The whole routine of an operator, with a real application: run the sample
// web application (tests/sample_webapp) in a target, let it talk to its world
// (a DNS resolver, an SMTP relay and an HTTP API: tests/testing/
// fake_services.h, all on loopback, outside the target), write or learn its
// policy, apply it, and check that the application keeps working while
// everything else it might try is refused and reported.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/fake_services.h"
#include "tests/testing/file_util.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"

namespace egress::testing {
namespace {

// Distinct loopback hosts of the application's world.
constexpr char kAppAddr[] = "127.0.0.1";
constexpr char kResolverAddr[] = "127.0.0.53";
constexpr char kSmtpAddr[] = "127.0.0.25";
constexpr char kApiAddr[] = "127.0.0.80";

// sample_webapp running in a cgroup. Stopped (SIGTERM, then SIGKILL after
// 5 s) and reaped by the destructor.
class WebApp {
 public:
  // Starts the app in `cgroup_dir` and waits up to 5 s for its "listening
  // on" line. Fails the test (and returns nullptr) if it does not come.
  static std::unique_ptr<WebApp> Start(const std::string& cgroup_dir,
                                       const std::vector<std::string>& args) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << strerror(errno);
      return nullptr;
    }
    std::vector<std::string> argv = {EGRESS_SAMPLE_WEBAPP_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const std::string procs = cgroup_dir + "/cgroup.procs";
    pid_t pid = fork();
    if (pid == 0) {
      // Only async-signal-safe calls here: the parent has threads. "0" moves
      // the writing process.
      int fd = open(procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(126);
      close(fd);
      dup2(out[1], 1);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    UniqueFd read_end(out[0]);
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << strerror(errno);
      return nullptr;
    }
    auto app = std::unique_ptr<WebApp>(new WebApp(pid));
    std::string line;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (line.find('\n') == std::string::npos && absl::Now() < deadline) {
      pollfd p = {read_end.get(), POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(read_end.get(), buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    // "listening on 127.0.0.1:PORT"
    size_t colon = line.rfind(':');
    uint32_t port = 0;
    if (!absl::StartsWith(line, "listening on ") ||
        colon == std::string::npos ||
        !absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(
                              absl::string_view(line).substr(colon + 1)),
                          &port) ||
        port == 0 || port > 65535) {
      ADD_FAILURE() << "sample_webapp did not start: '" << line << "'";
      return nullptr;
    }
    app->port_ = static_cast<uint16_t>(port);
    return app;
  }

  WebApp(const WebApp&) = delete;
  WebApp& operator=(const WebApp&) = delete;
  ~WebApp() {
    kill(pid_, SIGTERM);
    if (!WaitPidUntil(pid_, absl::Now() + absl::Seconds(5)).ok()) {
      kill(pid_, SIGKILL);
      WaitPidUntil(pid_, absl::Now() + absl::Seconds(5)).IgnoreError();
    }
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  explicit WebApp(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  uint16_t port_ = 0;
};

class RoutineTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto dns = FakeDnsServer::Create(kResolverAddr, kApiAddr);
    ASSERT_TRUE(dns.ok()) << dns.status();
    dns_ = *std::move(dns);
    auto smtp = SmtpSink::Create(kSmtpAddr);
    ASSERT_TRUE(smtp.ok()) << smtp.status();
    smtp_ = *std::move(smtp);
    auto api = HttpApiServer::Create(kApiAddr);
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = *std::move(api);
  }
  void TearDown() override {
    app_.reset();  // before the fixture removes the cgroup
    api_.reset();
    smtp_.reset();
    dns_.reset();
    EgressdTest::TearDown();
  }

  void StartApp() {
    app_ = WebApp::Start(
        cg_->path(),
        {"--listen", absl::StrCat(kAppAddr, ":0"), "--resolver",
         absl::StrCat(kResolverAddr, ":", dns_->port()), "--smtp",
         absl::StrCat(kSmtpAddr, ":", smtp_->port()), "--api",
         absl::StrCat(kApiAddr, ":", api_->port()), "--lifetime_s", "120"});
    ASSERT_NE(app_, nullptr);
  }

  // GET / on the app `n` times; returns the responses (status 0 if the
  // request itself failed, with the error as body).
  std::vector<HttpResponse> Orders(int n) {
    std::vector<HttpResponse> out;
    for (int i = 0; i < n; ++i) {
      auto r = HttpGet(kAppAddr, app_->port(), "/");
      out.push_back(r.ok() ? *r : HttpResponse{0, r.status().ToString()});
    }
    return out;
  }

  void ExpectAllServed(const std::vector<HttpResponse>& responses) {
    for (const HttpResponse& r : responses) {
      EXPECT_EQ(r.status, 200) << r.body;
      EXPECT_TRUE(absl::StartsWith(r.body, "ok: ")) << r.body;
      EXPECT_TRUE(absl::StrContains(r.body, kApiAddr)) << r.body;
    }
  }

  std::string PolicyPath() {
    return state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
  }

  std::unique_ptr<FakeDnsServer> dns_;
  std::unique_ptr<SmtpSink> smtp_;
  std::unique_ptr<HttpApiServer> api_;
  std::unique_ptr<WebApp> app_;
};

// True if some allow rule of `p` matches and no deny rule does.
bool PolicyAllows(const policy::Policy& p, uint8_t proto, uint16_t port,
                  const std::string& addr) {
  auto sa = ParseSockAddr(addr, port);
  if (!sa.ok()) return false;
  std::array<uint8_t, 16> a{};
  uint8_t family = 4;
  if (sa->family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa->get());
    memcpy(a.data(), &in->sin_addr, 4);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa->get());
    memcpy(a.data(), &in6->sin6_addr, 16);
    family = 6;
  }
  bool allowed = false;
  for (const policy::Rule& r : p.rules) {
    if (!policy::RuleMatches(r, proto, port, family, a)) continue;
    if (r.action == policy::Action::kDeny) return false;
    allowed = true;
  }
  return allowed;
}

// The application works under a policy written by hand, and a policy that
// forgets one of its needs breaks exactly that step, with EPERM.
TEST_F(RoutineTest, HandWrittenPolicyServesTheAppAndOmissionsFailLoudly) {
  auto write_policy = [&](bool with_smtp) {
    std::string smtp_rule = with_smtp
                                ? absl::StrCat(
                                      "  - name: smtp\n"
                                      "    to: [{ipBlock: {cidr: ",
                                      kSmtpAddr,
                                      "/32}}]\n"
                                      "    ports: [{port: ",
                                      smtp_->port(), ", protocol: TCP}]\n")
                                : "";
    std::ofstream(PolicyPath())
        << absl::StrCat(PolicyHead("web", cg_->relative_path()),
                        "  - name: dns\n"
                        "    to: [{ipBlock: {cidr: ",
                        kResolverAddr,
                        "/32}}]\n"
                        "    ports: [{port: ",
                        dns_->port(), ", protocol: UDP}]\n", smtp_rule,
                        "  - name: api\n"
                        "    to: [{ipBlock: {cidr: ",
                        kApiAddr,
                        "/32}}]\n"
                        "    ports: [{port: ",
                        api_->port(), ", protocol: TCP}]\n");
  };
  write_policy(true);
  CtlOk({"apply", "-f", PolicyPath()});
  ASSERT_NO_FATAL_FAILURE(StartApp());

  ExpectAllServed(Orders(3));
  EXPECT_EQ(dns_->queries(), 3);
  EXPECT_EQ(dns_->last_name(), "api.example.test");
  EXPECT_EQ(smtp_->mails(), 3);
  EXPECT_TRUE(absl::StrContains(smtp_->last_mail(), "orders@example.test"))
      << smtp_->last_mail();
  EXPECT_TRUE(absl::StrContains(smtp_->last_mail(), "order placed"))
      << smtp_->last_mail();
  EXPECT_EQ(api_->requests(), 3);

  write_policy(false);
  CtlOk({"apply", "-f", PolicyPath()});
  std::vector<HttpResponse> broken = Orders(2);
  for (const HttpResponse& r : broken) {
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_TRUE(absl::StartsWith(
        r.body, "smtp failed: Operation not permitted (errno 1): connect"))
        << r.body;
  }
  EXPECT_EQ(dns_->queries(), 5) << "DNS comes before SMTP and is allowed";
  EXPECT_EQ(smtp_->mails(), 3);
  EXPECT_EQ(api_->requests(), 3) << "the app stops at the failed step";
  EXPECT_GE(Counters("web")["denied"].get<uint64_t>(), 2u);
}

// Learn the policy in audit mode, apply what `egressctl suggest` proposes,
// and check that the application works and nothing else gets out.
TEST_F(RoutineTest, AuditSuggestApplyThenOnlyLearnedTrafficPasses) {
  AddTarget("web", nullptr, "audit");
  ASSERT_NO_FATAL_FAILURE(StartApp());

  // 1. Audit: the application works and egressd learns what it does.
  ExpectAllServed(Orders(4));
  EXPECT_EQ(dns_->queries(), 4);
  EXPECT_EQ(smtp_->mails(), 4);
  EXPECT_EQ(api_->requests(), 4);

  // 2. The suggestion: a valid policy for this target naming the three
  // destinations, and allowing exactly what was observed.
  // egressd drains records every 50 ms: wait (bounded) until it has learned
  // all three destinations.
  absl::Time learned_by = absl::Now() + absl::Seconds(10);
  while (absl::Now() < learned_by) {
    std::string seen = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(seen, kResolverAddr) &&
        absl::StrContains(seen, kSmtpAddr) && absl::StrContains(seen, kApiAddr))
      break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  // Only stdout is the policy file (CommandResult mixes in stderr).
  auto run = RunCommand({"sh", "-c",
                         "exec \"$0\" --socket \"$1\" suggest --target web "
                         "--since 10m > \"$2\"",
                         EGRESS_EGRESSCTL_PATH, socket_path_, PolicyPath()},
                        absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->output;
  CommandResult suggest;
  suggest.output = ReadFile(PolicyPath()).value_or("");
  std::string dry = CtlOk({"apply", "-f", PolicyPath(), "--dry-run"});
  for (const char* host : {kResolverAddr, kSmtpAddr, kApiAddr}) {
    EXPECT_TRUE(absl::StrContains(suggest.output, host))
        << host << " missing from:\n"
        << suggest.output;
    EXPECT_TRUE(absl::StrContains(dry, host)) << dry;
  }
  auto policies = policy::LoadPolicies(PolicyPath());
  ASSERT_TRUE(policies.ok()) << policies.status() << "\n" << suggest.output;
  ASSERT_EQ(policies->size(), 1u);
  const policy::Policy& p = (*policies)[0];
  EXPECT_EQ(p.name, "web");
  EXPECT_EQ(p.target.kind, policy::TargetSource::kCgroup);
  EXPECT_EQ(p.target.value, cg_->relative_path());
  EXPECT_EQ(p.mode, policy::Mode::kEnforce);
  EXPECT_TRUE(PolicyAllows(p, IPPROTO_UDP, dns_->port(), kResolverAddr));
  EXPECT_TRUE(PolicyAllows(p, IPPROTO_TCP, smtp_->port(), kSmtpAddr));
  EXPECT_TRUE(PolicyAllows(p, IPPROTO_TCP, api_->port(), kApiAddr));
  const uint16_t other_port = api_->port() == 65535 ? 1 : api_->port() + 1;
  EXPECT_FALSE(PolicyAllows(p, IPPROTO_TCP, other_port, kApiAddr));
  EXPECT_FALSE(PolicyAllows(p, IPPROTO_TCP, api_->port(), "127.0.0.99"));
  EXPECT_FALSE(PolicyAllows(p, IPPROTO_UDP, dns_->port(), "127.0.0.54"));
  EXPECT_FALSE(PolicyAllows(p, IPPROTO_TCP, api_->port(), "::1"));

  // 3. Apply: web is enforced with the learned rules.
  CtlOk({"apply", "-f", PolicyPath()});
  nlohmann::json targets = CtlJson({"target", "list"})["targets"];
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0]["mode"], "enforce") << targets.dump();

  // 4. The application still works, and its world saw the traffic.
  ExpectAllServed(Orders(4));
  EXPECT_EQ(dns_->queries(), 8);
  EXPECT_EQ(smtp_->mails(), 8);
  EXPECT_EQ(api_->requests(), 8);

  // 5. An attacker in the application's cgroup gets nowhere.
  const uint16_t api_port = api_->port(), dns_port = dns_->port();
  EXPECT_DENIED(InCgroup([&] { return TcpConnect(kApiAddr, other_port); }));
  EXPECT_DENIED(InCgroup([&] { return TcpConnect("127.0.0.99", api_port); }));
  EXPECT_DENIED(InCgroup([&] { return UdpSendto("127.0.0.54", dns_port); }));
  EXPECT_DENIED(InCgroup([&] { return TcpConnect("::1", api_port); }));

  // 6. And each attempt is on record.
  struct Want {
    std::string destination, protocol;
    uint16_t port;
    bool seen = false;
  };
  std::vector<Want> want = {{kApiAddr, "tcp", other_port},
                            {"127.0.0.99", "tcp", api_port},
                            {"127.0.0.54", "udp", dns_port},
                            {"::1", "tcp", api_port}};
  std::string records;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  bool all = false;
  while (!all && absl::Now() < deadline) {
    CommandResult r = Ctl({"events", "--last", "200", "-o", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    records = r.output;
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
      if (e.is_discarded() || e.value("verdict", "") != "DENIED" ||
          !e.contains("l4")) {
        continue;
      }
      for (Want& w : want) {
        if (e["l4"]["destination"] == w.destination &&
            e["l4"]["protocol"] == w.protocol &&
            e["l4"]["destination_port"] == w.port && e["target"] == "web") {
          w.seen = true;
        }
      }
    }
    all = true;
    for (const Want& w : want) all = all && w.seen;
    if (!all) absl::SleepFor(absl::Milliseconds(50));
  }
  for (const Want& w : want) {
    EXPECT_TRUE(w.seen) << "no DENIED record for " << w.destination << ":"
                        << w.port << "/" << w.protocol << " in\n"
                        << records;
  }
  // The application's own traffic was never denied.
  for (absl::string_view line :
       absl::StrSplit(records, '\n', absl::SkipEmpty())) {
    nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded() || e.value("verdict", "") != "DENIED" ||
        !e.contains("l4")) {
      continue;
    }
    const nlohmann::json& l4 = e["l4"];
    EXPECT_FALSE(
        (l4["destination"] == kResolverAddr &&
         l4["destination_port"] == dns_port) ||
        (l4["destination"] == kSmtpAddr &&
         l4["destination_port"] == smtp_->port()) ||
        (l4["destination"] == kApiAddr && l4["destination_port"] == api_port))
        << line;
  }
}

}  // namespace
}  // namespace egress::testing
