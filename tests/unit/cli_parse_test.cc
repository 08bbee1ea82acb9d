// egressctl's command line -> typed control request, without a daemon.
#include "userspace/cli/cli_parse.h"

#include <sys/socket.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CliParseTest : public ::testing::Test {
 protected:
  absl::StatusOr<ParsedCommand> Parse(std::vector<std::string> args) {
    return ParseCommandLine(args);
  }

  // The request of a command line that must parse, as type T.
  template <typename T>
  T Request(std::vector<std::string> args) {
    absl::StatusOr<ParsedCommand> c = Parse(args);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok() || !c->request || !std::holds_alternative<T>(*c->request)) {
      ADD_FAILURE() << "no request of the expected type";
      return T{};
    }
    return std::get<T>(*c->request);
  }
};

// UFW's `ufw --dry-run allow ...`: allow, deny and delete take --dry-run
// (before or after the command); commands that cannot dry-run refuse it.
TEST_F(CliParseTest, DryRunGoesWithAllowDenyAndDelete) {
  EXPECT_TRUE(
      Request<control::RuleAddRequest>({"allow", "443/tcp", "--dry-run"})
          .dry_run);
  EXPECT_TRUE(
      Request<control::RuleAddRequest>({"--dry-run", "deny", "any", "10.0.0.1"})
          .dry_run);
  EXPECT_FALSE(Request<control::RuleAddRequest>({"allow", "443/tcp"}).dry_run);
  EXPECT_TRUE(Request<control::RuleDeleteRequest>({"delete", "1", "--dry-run"})
                  .dry_run);
  EXPECT_TRUE(Request<control::RuleDeleteRequest>(
                  {"delete", "allow", "smtp", "--dry-run"})
                  .dry_run);
  EXPECT_EQ(Parse({"allow", "smtp", "--dry-run", "--cut"}).status().message(),
            "--cut and --dry-run do not go together: a dry run cuts nothing");
  EXPECT_EQ(Parse({"mode", "audit", "--dry-run"}).status().message(),
            "option '--dry-run' does not apply to 'mode'");
}

// Found by tests/fuzz/targets/cli_fuzzer.cc: `target add web --pattern
// '/ss\xff\xfey'` was sent, and egressd got "/ss\uFFFD\uFFFDy": another
// pattern than the one typed. Arguments that are not UTF-8 are refused
// (the command of `run`, after "--", is not sent and may be any bytes).
TEST_F(CliParseTest, ArgumentsThatAreNotUtf8AreRefused) {
  absl::StatusOr<ParsedCommand> c =
      Parse({"target", "add", "web", "--pattern", "/ss\xff\xfey"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("argument 5 is not UTF-8"));
  EXPECT_FALSE(Parse({"allow", "smtp", "comment", "caf\xe9"}).ok());
  // An option's value is an argument too (the value after --target was
  // skipped by the first fix; cli_fuzzer found it).
  EXPECT_THAT(Parse({"list", "--target", "w\xff"}).status().message(),
              HasSubstr("argument 3 is not UTF-8"));
  EXPECT_TRUE(Parse({"allow", "smtp", "comment", "caf\xc3\xa9"}).ok());
}

TEST_F(CliParseTest, AllowServiceToAddress) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c, Parse({"allow", "smtp", "10.0.0.5"}));
  EXPECT_EQ(c.command->name, "allow");
  EXPECT_EQ(c.local, LocalAction::kNone);
  EXPECT_EQ(c.socket_path, "/run/egress/egressd.sock");
  const auto& req = std::get<control::RuleAddRequest>(*c.request);
  EXPECT_EQ(req.target, "");
  EXPECT_FALSE(req.for_seconds.has_value());
  const policy::Rule& r = req.rule;
  EXPECT_EQ(r.action, policy::Action::kAllow);
  ASSERT_EQ(r.ports.size(), 1u);
  EXPECT_EQ(r.ports[0].proto, policy::Proto::kTcp);
  EXPECT_EQ(r.ports[0].lo, 25);
  ASSERT_EQ(r.destinations.size(), 1u);
  EXPECT_EQ(r.destinations[0].ToString(), "10.0.0.5");
  EXPECT_EQ(control::CommandOf(*c.request), "rule_add");
}

// egressctl waits 30 s for egressd by default (room for a `list` of 100,000
// rules on a loaded machine), or what --timeout says, on any command.
TEST_F(CliParseTest, TimeoutDefaultsTo30sAndTakesADuration) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c, Parse({"status"}));
  EXPECT_EQ(c.timeout, absl::Seconds(30));
  ASSERT_OK_AND_ASSIGN(c, Parse({"--timeout", "2m", "list"}));
  EXPECT_EQ(c.timeout, absl::Minutes(2));
  ASSERT_OK_AND_ASSIGN(c, Parse({"allow", "443/tcp", "--timeout=5s"}));
  EXPECT_EQ(c.timeout, absl::Seconds(5));
  EXPECT_THAT(Parse({"--timeout", "0s", "status"}).status().message(),
              HasSubstr("--timeout wants a duration like 90s"));
  EXPECT_THAT(Parse({"--timeout", "soon", "status"}).status().message(),
              HasSubstr("not 'soon'"));
}

TEST_F(CliParseTest, TargetOptionAnywhereAndSocket) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c,
                       Parse({"--socket", "/tmp/s", "deny", "--target", "web",
                              "any", "169.254.169.254"}));
  EXPECT_EQ(c.socket_path, "/tmp/s");
  const auto& req = std::get<control::RuleAddRequest>(*c.request);
  EXPECT_EQ(req.target, "web");
  EXPECT_EQ(req.rule.action, policy::Action::kDeny);
  ASSERT_OK_AND_ASSIGN(ParsedCommand c2,
                       Parse({"list", "-t=web", "-o", "json"}));
  EXPECT_EQ(std::get<control::ListRequest>(*c2.request).target, "web");
  EXPECT_EQ(c2.output, OutputFormat::kJson);
}

// Names are rules: nothing is resolved (egressctl has no resolver at all).
TEST_F(CliParseTest, NameIsARule) {
  auto req =
      Request<control::RuleAddRequest>({"allow", "smtp", "relay.example.org"});
  EXPECT_THAT(req.rule.names, ElementsAre("relay.example.org"));
  EXPECT_TRUE(req.rule.destinations.empty());
  req = Request<control::RuleAddRequest>({"allow", "https", "*.example.com"});
  EXPECT_THAT(req.rule.names, ElementsAre("*.example.com"));
}

// `allow 443 tcp` is a typo for 443/tcp: an error naming 'tcp', and no
// lookup of "tcp" (which would send it to the machine's DNS servers).
TEST_F(CliParseTest, PortThenProtocolWordIsAnErrorNotALookup) {
  absl::StatusOr<ParsedCommand> c = Parse({"allow", "443", "tcp"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "'tcp' is not a destination: expected an address, CIDR or host "
            "name (did you mean 443/tcp?)");
  for (const char* word : {"udp", "mailhost", "eth0", "localhost"}) {
    EXPECT_FALSE(Parse({"allow", "smtp", word}).ok()) << word;
  }
}

TEST_F(CliParseTest, InterfaceWordsSayEgressHasNone) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"allow", "out", "on", "eth0", "to", "10.0.0.5",
                                 "port", "25"},
        {"allow", "in", "on", "eth0", "22/tcp"},
        {"deny", "on", "eth0", "any"}}) {
    EXPECT_STATUS(Parse(args), absl::StatusCode::kInvalidArgument,
                  "no per-interface rules");
  }
}

TEST_F(CliParseTest, TargetCommands) {
  auto add = Request<control::TargetAddRequest>(
      {"target", "add", "web", "--unit", "nginx.service", "--mode", "audit"});
  EXPECT_EQ(add.spec.name, "web");
  EXPECT_EQ(add.spec.source, policy::TargetSource::kUnit);
  EXPECT_EQ(add.spec.source_value, "nginx.service");
  EXPECT_EQ(add.spec.mode, policy::Mode::kAudit);
  EXPECT_FALSE(add.spec.ephemeral);
  EXPECT_EQ(Request<control::TargetRemoveRequest>({"target", "rm", "web"}).name,
            "web");
  Request<control::TargetListRequest>({"target", "ls"});
  EXPECT_STATUS(Parse({"target", "add", "web"}),
                absl::StatusCode::kInvalidArgument, "exactly one of --cgroup");
  EXPECT_STATUS(Parse({"target", "add", "web", "--cgroup", "/a", "--pid", "1"}),
                absl::StatusCode::kInvalidArgument, "exactly one of");
  auto user = Request<control::TargetAddRequest>(
      {"target", "add", "www", "--user", "www-data"});
  EXPECT_EQ(user.spec.source, policy::TargetSource::kUser);
  EXPECT_EQ(user.spec.source_value, "www-data");
  EXPECT_EQ(Request<control::TargetAddRequest>(
                {"target", "add", "www", "--user", "33"})
                .spec.source_value,
            "33");
  EXPECT_STATUS(Parse({"target", "add", "www", "--user", "www data"}),
                absl::StatusCode::kInvalidArgument,
                "--user: bad user \"www data\"");
  EXPECT_STATUS(Parse({"target", "add", "www", "--user", "4294967295"}),
                absl::StatusCode::kInvalidArgument,
                "--user: bad user \"4294967295\"");
  EXPECT_STATUS(Parse({"target", "add", "www", "--user", ""}),
                absl::StatusCode::kInvalidArgument, "--user");
  EXPECT_STATUS(
      Parse({"target", "add", "www", "--user", "33", "--cgroup", "/a"}),
      absl::StatusCode::kInvalidArgument, "exactly one of");
  EXPECT_STATUS(
      Parse({"target", "add", "web", "--cgroup", "/a", "--mode", "observe"}),
      absl::StatusCode::kInvalidArgument, "unknown mode 'observe'");
  EXPECT_STATUS(Parse({"target", "frob"}), absl::StatusCode::kInvalidArgument,
                "'frob'");
}

// egressd hands a unit to `systemctl show` as root: one starting with '-'
// would be an option there (-H: another host).
TEST_F(CliParseTest, UnitsStartingWithADashAreRefused) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"target", "add", "x", "--unit=--system"},
        {"target", "add", "x", "--unit", "-Mfoo"},
        {"target", "add", "x", "--unit", "-Hroot@192.0.2.1:x.service"}}) {
    EXPECT_STATUS(Parse(args), absl::StatusCode::kInvalidArgument,
                  "--unit: bad unit name")
        << args.back();
  }
  EXPECT_STATUS(Parse({"target", "add", "x", "--unit", "a b"}),
                absl::StatusCode::kInvalidArgument, "--unit: bad unit name");
  EXPECT_EQ(Request<control::TargetAddRequest>(
                {"target", "add", "x", "--unit", "dev-sda1.swap"})
                .spec.source_value,
            "dev-sda1.swap");
}

TEST_F(CliParseTest, ModeAndLogging) {
  auto mode = Request<control::ModeRequest>({"mode", "audit", "-t", "web"});
  EXPECT_EQ(mode.mode, policy::Mode::kAudit);
  EXPECT_EQ(mode.target, "web");
  EXPECT_FALSE(mode.cut);
  EXPECT_TRUE(
      Request<control::ModeRequest>({"mode", "enforce", "-t", "web", "--cut"})
          .cut);
  EXPECT_STATUS(Parse({"mode", "audit", "--cut"}),
                absl::StatusCode::kInvalidArgument,
                "--cut goes with 'mode enforce'");
  auto logging = Request<control::LoggingRequest>({"logging", "all"});
  EXPECT_EQ(logging.level, policy::LoggingLevel::kAll);
  EXPECT_EQ(Request<control::LoggingRequest>({"logging", "off"}).level,
            policy::LoggingLevel::kOff);
}

TEST_F(CliParseTest, DeleteByNumberOrRule) {
  EXPECT_EQ(Request<control::RuleDeleteRequest>({"delete", "3"}).number, 3u);
  auto by_rule = Request<control::RuleDeleteRequest>(
      {"delete", "allow", "dns", "10.0.0.53"});
  ASSERT_TRUE(by_rule.rule.has_value());
  EXPECT_EQ(by_rule.rule->spec, "dns");
  EXPECT_STATUS(Parse({"delete", "0"}), absl::StatusCode::kInvalidArgument,
                "'0'");
  EXPECT_STATUS(Parse({"delete", "3", "4"}), absl::StatusCode::kInvalidArgument,
                "'4'");
  EXPECT_STATUS(Parse({"delete", "permit", "dns"}),
                absl::StatusCode::kInvalidArgument, "'permit'");
}

TEST_F(CliParseTest, RunCollectsAllowsAndCommand) {
  ASSERT_OK_AND_ASSIGN(
      ParsedCommand c,
      Parse({"run", "--allow", "dns 127.0.0.53", "--allow", "443/tcp",
             "--target-name", "job", "--", "python3", "-m", "http.server",
             "--bind", "127.0.0.1"}));
  EXPECT_EQ(c.local, LocalAction::kRun);
  const auto& spec = std::get<control::TargetAddRequest>(*c.request).spec;
  EXPECT_EQ(spec.name, "job");
  EXPECT_TRUE(spec.ephemeral);
  EXPECT_EQ(spec.mode, policy::Mode::kEnforce);
  EXPECT_EQ(spec.rules.size(), 2u);
  // Options after "--" belong to the command.
  EXPECT_EQ(c.run_argv,
            (std::vector<std::string>{"python3", "-m", "http.server", "--bind",
                                      "127.0.0.1"}));
  EXPECT_STATUS(Parse({"run", "--allow", "dns 127.0.0.53"}),
                absl::StatusCode::kInvalidArgument, "usage: egressctl run");
  EXPECT_STATUS(Parse({"run", "python3"}), absl::StatusCode::kInvalidArgument,
                "'python3'");
  EXPECT_STATUS(Parse({"run", "--allow", "smpt", "--", "true"}),
                absl::StatusCode::kInvalidArgument, "smpt");
}

// --user and --group are kept as given: looked up only when the command
// starts (from /etc/passwd and /etc/group), never while parsing.
TEST_F(CliParseTest, RunTakesTheUserAndGroupAsGiven) {
  ASSERT_OK_AND_ASSIGN(
      ParsedCommand c,
      Parse({"run", "--user", "nobody", "--group", "65534", "--", "id", "-u"}));
  EXPECT_EQ(c.run_user, "nobody");
  EXPECT_EQ(c.run_group, "65534");
  EXPECT_EQ(c.run_argv, (std::vector<std::string>{"id", "-u"}));
  ASSERT_OK_AND_ASSIGN(ParsedCommand plain, Parse({"run", "--", "true"}));
  EXPECT_EQ(plain.run_user, "");
  EXPECT_EQ(plain.run_group, "");
}

TEST_F(CliParseTest, RunTakesWhatTheCommandMayDo) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand plain, Parse({"run", "--", "true"}));
  EXPECT_FALSE(plain.run_restrictions.FamilyAllowed(AF_PACKET));
  EXPECT_FALSE(plain.run_restrictions.allow_userns);
  EXPECT_TRUE(plain.run_restrictions.RefusesIoUring());
  ASSERT_OK_AND_ASSIGN(
      ParsedCommand c,
      Parse({"run", "--allow-family", "packet,vsock", "--allow-userns",
             "--allow-io-uring", "--", "true"}));
  EXPECT_TRUE(c.run_restrictions.FamilyAllowed(AF_PACKET));
  EXPECT_TRUE(c.run_restrictions.FamilyAllowed(AF_VSOCK));
  EXPECT_FALSE(c.run_restrictions.FamilyAllowed(AF_XDP));
  EXPECT_TRUE(c.run_restrictions.allow_userns);
  EXPECT_FALSE(c.run_restrictions.RefusesIoUring());
  ASSERT_OK_AND_ASSIGN(ParsedCommand any,
                       Parse({"run", "--any-family", "--", "true"}));
  EXPECT_TRUE(any.run_restrictions.FamilyAllowed(AF_XDP));
  EXPECT_STATUS(Parse({"run", "--allow-family", "paket", "--", "true"}),
                absl::StatusCode::kInvalidArgument, "did you mean 'packet'");
  EXPECT_STATUS(Parse({"allow", "smtp", "--allow-userns"}),
                absl::StatusCode::kInvalidArgument, "--allow-userns");
}

TEST_F(CliParseTest, EventsAskForTheOutputFormat) {
  auto text = Request<control::EventsRequest>(
      {"events", "--follow", "--verdict", "deny", "--last", "5"});
  EXPECT_TRUE(text.follow);
  EXPECT_EQ(text.verdict, "deny");
  EXPECT_EQ(text.last, 5u);
  EXPECT_EQ(text.format, control::EventFormat::kText);
  EXPECT_EQ(Request<control::EventsRequest>({"events", "-o", "json"}).format,
            control::EventFormat::kJson);
}

TEST_F(CliParseTest, SuggestAndExport) {
  auto s = Request<control::SuggestRequest>(
      {"suggest", "-t", "web", "--since", "2h", "--group", "/24,/64"});
  EXPECT_EQ(s.target, "web");
  EXPECT_EQ(s.since_seconds, 7200);
  EXPECT_EQ(s.group_v4, 24);
  EXPECT_EQ(s.group_v6, 64);
  EXPECT_FALSE(s.group_names);
  EXPECT_TRUE(Request<control::SuggestRequest>(
                  {"suggest", "-t", "web", "--group-names"})
                  .group_names);
  ASSERT_OK_AND_ASSIGN(ParsedCommand e, Parse({"export", "--dir", "/tmp/x"}));
  EXPECT_EQ(e.export_dir, "/tmp/x");
}

TEST_F(CliParseTest, ErrorsNameTheWord) {
  EXPECT_STATUS(Parse({}), absl::StatusCode::kInvalidArgument, "no command");
  EXPECT_STATUS(Parse({"alow"}), absl::StatusCode::kInvalidArgument,
                "did you mean 'allow'");
  EXPECT_STATUS(Parse({"frobnicate"}), absl::StatusCode::kInvalidArgument,
                "unknown command 'frobnicate'");
  EXPECT_STATUS(Parse({"allow"}), absl::StatusCode::kInvalidArgument,
                "usage: egressctl allow");
  EXPECT_STATUS(Parse({"list", "--frob"}), absl::StatusCode::kInvalidArgument,
                "'--frob'");
  EXPECT_STATUS(Parse({"list", "--target"}), absl::StatusCode::kInvalidArgument,
                "needs a value");
  EXPECT_STATUS(Parse({"list", "-o", "yaml"}),
                absl::StatusCode::kInvalidArgument, "'yaml'");
  EXPECT_STATUS(Parse({"status", "--mode", "audit"}),
                absl::StatusCode::kInvalidArgument,
                "does not apply to 'status'");
  EXPECT_STATUS(Parse({"list", "--", "x"}), absl::StatusCode::kInvalidArgument,
                "only goes with 'run'");
  EXPECT_STATUS(Parse({"allow", "in", "22/tcp"}),
                absl::StatusCode::kInvalidArgument, "only controls outgoing");
}

// One value wins silently no more: "-f a.yaml -f b.yaml" applied b.yaml
// only, "--target web --target db" changed db only.
TEST_F(CliParseTest, AnOptionWithOneValueGivenTwiceIsAnError) {
  EXPECT_STATUS(Parse({"apply", "-f", "a.yaml", "-f", "b.yaml"}),
                absl::StatusCode::kInvalidArgument,
                "option --file given twice ('a.yaml', then 'b.yaml')");
  EXPECT_STATUS(
      Parse({"allow", "443", "192.0.2.1", "--target", "web", "--target", "db"}),
      absl::StatusCode::kInvalidArgument, "option --target given twice");
  EXPECT_STATUS(Parse({"list", "-t", "web", "--target=db"}),
                absl::StatusCode::kInvalidArgument,
                "option --target given twice");
  EXPECT_STATUS(Parse({"--socket", "/tmp/a", "list", "--socket", "/tmp/b"}),
                absl::StatusCode::kInvalidArgument,
                "option --socket given twice");
  // Documented as repeatable: every value is kept.
  ASSERT_OK_AND_ASSIGN(ParsedCommand run,
                       Parse({"run", "--allow", "dns 192.0.2.53", "--allow",
                              "443 192.0.2.1", "--allow-family", "packet",
                              "--allow-family", "vsock", "--", "true"}));
  EXPECT_EQ(std::get<control::TargetAddRequest>(*run.request).spec.rules.size(),
            2u);
  EXPECT_TRUE(run.run_restrictions.FamilyAllowed(AF_PACKET));
  EXPECT_TRUE(run.run_restrictions.FamilyAllowed(AF_VSOCK));
}

// The rule grammar's refusals reach the command line, `run --allow` too:
// none of these may be sent as a rule.
TEST_F(CliParseTest, RuleWordsThatWouldWidenOrMisleadAreRefused) {
  EXPECT_STATUS(Parse({"allow", "443", "to"}),
                absl::StatusCode::kInvalidArgument,
                "'to' needs an address, network or host name after it");
  EXPECT_STATUS(Parse({"run", "--allow", "443 to", "--", "true"}),
                absl::StatusCode::kInvalidArgument,
                "'to' needs an address, network or host name after it");
  EXPECT_STATUS(Parse({"deny", "any", "192.0.2.0-255"}),
                absl::StatusCode::kInvalidArgument,
                "looks like an address or address range");
  EXPECT_STATUS(Parse({"allow", "443", "10.0.0.1-10.0.0.5"}),
                absl::StatusCode::kInvalidArgument,
                "looks like an address or address range");
  EXPECT_STATUS(
      Parse({"allow", "443", "comment", "web", "server", "to", "192.0.2.1"}),
      absl::StatusCode::kInvalidArgument, "quote a comment of several words");
  EXPECT_STATUS(Parse({"allow", "443", "192.0.2.1", "comment",
                       "web\n   2 ALLOW IN Anywhere"}),
                absl::StatusCode::kInvalidArgument, "control character");
  auto req = Request<control::RuleAddRequest>(
      {"allow", "443", "192.0.2.1", "comment", "web server"});
  EXPECT_EQ(req.rule.comment, "web server");
  EXPECT_EQ(req.rule.destinations.size(), 1u);
}

// The text after `comment` was taken for an option when it began with '-'
// ("unknown option '- x'"). It is the comment, whatever it starts with;
// options still work around it.
TEST_F(CliParseTest, ACommentStartingWithADashIsTheComment) {
  for (const char* text : {"- x", "-t", "--dry-run", "-"}) {
    auto req = Request<control::RuleAddRequest>(
        {"allow", "443", "192.0.2.1", "comment", text, "-t", "web"});
    EXPECT_EQ(req.rule.comment, text);
    EXPECT_EQ(req.target, "web") << text;
  }
  auto req = Request<control::RuleAddRequest>(
      {"-t", "web", "allow", "out", "proto", "tcp", "to", "192.0.2.1", "port",
       "25", "comment", "-relay-"});
  EXPECT_EQ(req.rule.comment, "-relay-");
  // A comment word that is an option's value is no comment keyword.
  EXPECT_STATUS(Parse({"allow", "443", "-t", "comment", "-x"}),
                absl::StatusCode::kInvalidArgument, "unknown option '-x'");
}

TEST_F(CliParseTest, HelpAndVersion) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand h, Parse({"--help"}));
  EXPECT_EQ(h.local, LocalAction::kHelp);
  EXPECT_EQ(h.topic, "");
  ASSERT_OK_AND_ASSIGN(ParsedCommand v, Parse({"version"}));
  EXPECT_EQ(v.local, LocalAction::kVersion);
  ASSERT_OK_AND_ASSIGN(ParsedCommand v2, Parse({"--version"}));
  EXPECT_EQ(v2.local, LocalAction::kVersion);
  ASSERT_OK_AND_ASSIGN(ParsedCommand a, Parse({"target", "add", "--help"}));
  EXPECT_EQ(a.local, LocalAction::kHelp);
  EXPECT_EQ(a.topic, "target add");
  ASSERT_OK_AND_ASSIGN(ParsedCommand b, Parse({"help", "target", "remove"}));
  EXPECT_EQ(b.topic, "target remove");
  EXPECT_STATUS(Parse({"help", "frob"}), absl::StatusCode::kInvalidArgument,
                "'frob'");
}

TEST_F(CliParseTest, AllowForADurationSendsSeconds) {
  EXPECT_EQ(Request<control::RuleAddRequest>(
                {"allow", "smtp", "10.0.0.5", "--for", "30m"})
                .for_seconds,
            1800);
  EXPECT_EQ(Request<control::RuleAddRequest>({"allow", "--for", "1h30m", "dns"})
                .for_seconds,
            5400);
  EXPECT_EQ(Request<control::RuleAddRequest>(
                {"deny", "any", "10.0.0.9", "--for", "7d"})
                .for_seconds,
            7 * 86400);
}

TEST_F(CliParseTest, BadDurationsNameTheFlag) {
  for (const char* bad :
       {"", "0s", "-5m", "30", "soon", "1y", "500ms", "4000d", "0d"}) {
    auto c = Parse({"allow", "smtp", "10.0.0.5", "--for", bad});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("--for wants a duration"))
        << c.status();
  }
  // --for belongs to allow/deny only.
  EXPECT_FALSE(Parse({"list", "--for", "30m"}).ok());
}

}  // namespace
}  // namespace egress::cli
