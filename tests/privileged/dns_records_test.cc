// What egress says about names, against a real dnsmasq
// (tests/testing/dnsmasq.h): verdict records name the DNS names of a
// destination a name rule decided, a refusal of an address never learned for
// the port's names says so in its hint, `status` and the metrics count the
// answers, and a target whose processes resolve through nscd or
// systemd-resolved's socket (a chroot of the test's own with such a view,
// never the machine's files) is reported by `status` and `verify`.
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/dns_client.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"

namespace egress::testing {
namespace {

constexpr uint16_t kApiPort = 40301;   // allow 40301/tcp api.example.test
constexpr uint16_t kDenyPort = 40302;  // deny 40302/tcp blocked.example.test
constexpr char kHosts[] =
    "127.205.0.1 api.example.test\n"
    "127.205.0.2 blocked.example.test\n"
    "127.205.0.3 other.example.test\n";

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return out.good();
}

class DnsRecordsTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    DnsmasqConfig config;
    config.hosts = kHosts;
    auto d = Dnsmasq::Start(config);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = *std::move(d);
    AddTarget("web");
    CtlOk({"allow", "dns", dns_->address()});
    CtlOk({"allow", absl::StrCat(kApiPort, "/tcp"), "api.example.test"});
    // The name deny beats the address allow.
    CtlOk({"allow", absl::StrCat(kDenyPort, "/tcp"), "127.205.0.2"});
    CtlOk({"deny", absl::StrCat(kDenyPort, "/tcp"), "blocked.example.test"});
  }
  void TearDown() override {
    dns_.reset();
    EgressdTest::TearDown();
  }

  // A hand-built lookup of `name` from the target, then a connect to
  // `addr`:`port`: the connect's errno (1000 + the lookup's on failure).
  int AskThenConnect(const std::string& name, const std::string& addr,
                     uint16_t port) {
    const std::string server = dns_->address();
    return InCgroup([server, name, addr, port] {
      const DnsQueryResult q = DnsQuery(server, name);
      if (q.error != 0) return 1000 + q.error;
      return TcpConnect(addr, port);
    });
  }

  // The target's records to `addr`:`port`, once there are `n` (bounded).
  std::vector<nlohmann::json> RecordsTo(const std::string& addr, uint16_t port,
                                        size_t n) {
    std::vector<nlohmann::json> out;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    do {
      out.clear();
      CommandResult r =
          Ctl({"events", "--target", "web", "--last", "1000", "-o", "json"});
      EXPECT_EQ(r.exit_code, 0) << r.output;
      for (absl::string_view line :
           absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.contains("l4")) continue;
        if (j["l4"]["destination"] == addr &&
            j["l4"]["destination_port"] == port) {
          out.push_back(j);
        }
      }
      if (out.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    return out;
  }

  nlohmann::json StatusOfWeb() { return TargetStatus("web"); }

  std::unique_ptr<Dnsmasq> dns_;
};

// Allowed and refused through a name: the record names it
// (destination_names, and the text). A refusal of an address the name never
// resolved to explains that in its hint.
TEST_F(DnsRecordsTest, RecordsNameTheNameAndUnlearnedAddresses) {
  CtlOk({"logging", "all", "--target", "web"});
  EXPECT_ALLOWED(AskThenConnect("api.example.test", "127.205.0.1", kApiPort));
  EXPECT_DENIED(
      AskThenConnect("blocked.example.test", "127.205.0.2", kDenyPort));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.205.0.9", kApiPort); }));

  std::vector<nlohmann::json> allowed = RecordsTo("127.205.0.1", kApiPort, 1);
  ASSERT_EQ(allowed.size(), 1u);
  EXPECT_EQ(allowed[0]["verdict"], "ALLOWED") << allowed[0];
  EXPECT_EQ(allowed[0]["destination_names"],
            nlohmann::json::array({"api.example.test"}))
      << allowed[0];
  EXPECT_TRUE(absl::StrContains(allowed[0]["message"].get<std::string>(),
                                "name api.example.test"))
      << allowed[0];

  std::vector<nlohmann::json> denied = RecordsTo("127.205.0.2", kDenyPort, 1);
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0]["reason"], "MATCHED_DENY") << denied[0];
  EXPECT_EQ(denied[0]["destination_names"],
            nlohmann::json::array({"blocked.example.test"}))
      << denied[0];

  std::vector<nlohmann::json> never = RecordsTo("127.205.0.9", kApiPort, 1);
  ASSERT_EQ(never.size(), 1u);
  EXPECT_EQ(never[0]["reason"], "NO_MATCHING_RULE") << never[0];
  EXPECT_FALSE(never[0].contains("destination_names")) << never[0];
  const std::string hint = never[0].value("hint", "");
  EXPECT_TRUE(absl::StrContains(
      hint,
      "127.205.0.9 was never an answer to the target's own DNS "
      "lookups of api.example.test"))
      << hint;
  EXPECT_TRUE(
      absl::StrContains(hint, absl::StrCat("egressctl allow ", kApiPort,
                                           "/tcp 127.205.0.9 --target web")))
      << hint;
  // The text form says it too.
  CommandResult text = Ctl({"events", "--target", "web", "--last", "1000"});
  EXPECT_TRUE(
      absl::StrContains(text.output, "never an answer for api.example.test"))
      << text.output;
}

// `status` (JSON and text) and the metrics count what the answers did.
TEST_F(DnsRecordsTest, StatusAndMetricsCountAnswers) {
  EXPECT_ALLOWED(AskThenConnect("api.example.test", "127.205.0.1", kApiPort));
  // No name rule covers it: ignored, counted.
  EXPECT_DENIED(AskThenConnect("other.example.test", "127.205.0.3", kApiPort));
  const nlohmann::json t = StatusOfWeb();
  EXPECT_EQ(t["name_rules"], 2) << t;
  const nlohmann::json& d = t["dns"];
  EXPECT_EQ(d["queries"], 2) << d;
  EXPECT_EQ(d["answers"], 2) << d;
  EXPECT_EQ(d["answers_matched"], 2) << d;
  EXPECT_EQ(d["bindings_learned"], 1) << d;
  EXPECT_EQ(d["bindings_live"], 1) << d;
  EXPECT_EQ(d["ignored_no_rule"], 1) << d;
  EXPECT_EQ(d["ignored_no_query"], 0) << d;
  EXPECT_EQ(d["ignored_malformed"], 0) << d;
  EXPECT_EQ(d["refused_full"], 0) << d;
  EXPECT_TRUE(d["resolver_warnings"].empty()) << d;
  const std::string text = CtlOk({"status"});
  EXPECT_TRUE(absl::StrContains(text,
                                "names: 2 name rules; 2 queries, 2 "
                                "answers (2 matched), 1 bindings "
                                "learned"))
      << text;
  const std::string metrics = ScrapeMetrics();
  EXPECT_TRUE(
      absl::StrContains(metrics, "egress_dns_answers_total{target=\"web\"} 2"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics,
      "egress_dns_answers_ignored_total{reason=\"no_rule\",target=\"web\"} 1"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "egress_dns_bindings_learned_total{target=\"web\"} 1"))
      << metrics;
}

// `list`, `status numbered` and `export` show the name rules as typed.
TEST_F(DnsRecordsTest, ListStatusAndExportShowNameRules) {
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{
           {"list"}, {"status", "numbered"}, {"export", "--target", "web"}}) {
    const std::string out = CtlOk(cmd);
    EXPECT_TRUE(absl::StrContains(out, "api.example.test")) << out;
    EXPECT_TRUE(absl::StrContains(out, "blocked.example.test")) << out;
  }
  const std::string yaml = CtlOk({"export", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(yaml, "domainNames")) << yaml;
  const nlohmann::json rules = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(rules.size(), 4u) << rules;
  EXPECT_EQ(rules[1]["names"], nlohmann::json::array({"api.example.test"}))
      << rules;
}

// A view that learns (dns first, a resolver the rules allow, no daemon
// sockets) is not reported; nss-resolve with resolved's socket, nscd's
// socket and a resolver no rule allows are, by `status` and `verify`.
TEST_F(DnsRecordsTest, ResolutionWithoutDnsSocketsIsReported) {
  char dir[] = "/tmp/egress-resolver-view-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  for (const char* d : {"/etc", "/run", "/run/systemd", "/run/systemd/resolve",
                        "/var", "/var/run", "/var/run/nscd"}) {
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  }
  ASSERT_TRUE(WriteText(root + "/etc/nsswitch.conf", "hosts: files dns\n"));
  ASSERT_TRUE(WriteText(root + "/etc/resolv.conf",
                        absl::StrCat("nameserver ", dns_->address(), "\n")));
  pid_t good = StartChrootedSleeper(cg_->path(), root, {});
  ASSERT_GT(good, 0);
  nlohmann::json t = StatusOfWeb();
  EXPECT_TRUE(t["dns"]["resolver_warnings"].empty()) << t;
  kill(good, SIGKILL);
  waitpid(good, nullptr, 0);

  ASSERT_TRUE(WriteText(root + "/etc/nsswitch.conf",
                        "hosts: files resolve [!UNAVAIL=return] dns\n"));
  ASSERT_TRUE(
      WriteText(root + "/etc/resolv.conf", "nameserver 127.206.0.53\n"));
  pid_t bad =
      StartChrootedSleeper(cg_->path(), root,
                           {root + "/run/systemd/resolve/io.systemd.Resolve",
                            root + "/var/run/nscd/socket"});
  ASSERT_GT(bad, 0);
  t = StatusOfWeb();
  const std::string warnings = t["dns"]["resolver_warnings"].dump();
  EXPECT_EQ(t["dns"]["resolver_warnings"].size(), 3u) << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, "resolves through systemd-resolved"))
      << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, "sees nscd's socket")) << warnings;
  EXPECT_TRUE(absl::StrContains(warnings, "asks the resolver 127.206.0.53"))
      << warnings;
  EXPECT_TRUE(absl::StrContains(CtlOk({"status"}),
                                "warning: names cannot be learned: process"));
  CommandResult verify = Ctl({"verify", "--target", "web"});
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_TRUE(
      absl::StrContains(verify.output, "names cannot be learned: process"))
      << verify.output;
  kill(bad, SIGKILL);
  waitpid(bad, nullptr, 0);
  EXPECT_TRUE(RemoveTree(root).ok());
}

}  // namespace
}  // namespace egress::testing
