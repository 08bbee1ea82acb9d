// egressctl's command line -> control request, without a daemon.
#include "userspace/cli/cli_parse.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

using nlohmann::json;

policy::HostResolver FakeResolver() {
  return
      [](const std::string& host) -> absl::StatusOr<std::vector<policy::Cidr>> {
        if (host == "relay.example.org") {
          return std::vector<policy::Cidr>{*policy::Cidr::Parse("192.0.2.25")};
        }
        return absl::NotFoundError("cannot resolve host '" + host + "'");
      };
}

absl::StatusOr<ParsedCommand> Parse(std::vector<std::string> args) {
  return ParseCommandLine(args, FakeResolver());
}

TEST(CliParseTest, AllowServiceToAddress) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c, Parse({"allow", "smtp", "10.0.0.5"}));
  EXPECT_EQ(c.cmd, "rule_add");
  EXPECT_EQ(c.request["cmd"], "rule_add");
  EXPECT_EQ(c.request["target"], "");
  ASSERT_OK_AND_ASSIGN(policy::Rule r, policy::RuleFromJson(c.request["rule"]));
  EXPECT_EQ(r.action, policy::Action::kAllow);
  ASSERT_EQ(r.ports.size(), 1u);
  EXPECT_EQ(r.ports[0].proto, policy::Proto::kTcp);
  EXPECT_EQ(r.ports[0].lo, 25);
  ASSERT_EQ(r.destinations.size(), 1u);
  EXPECT_EQ(r.destinations[0].ToString(), "10.0.0.5");
  EXPECT_EQ(c.socket_path, "/run/egress/egressd.sock");
}

TEST(CliParseTest, TargetOptionAnywhereAndSocket) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c,
                       Parse({"--socket", "/tmp/s", "deny", "--target", "web",
                              "any", "169.254.169.254"}));
  EXPECT_EQ(c.socket_path, "/tmp/s");
  EXPECT_EQ(c.request["target"], "web");
  ASSERT_OK_AND_ASSIGN(policy::Rule r, policy::RuleFromJson(c.request["rule"]));
  EXPECT_EQ(r.action, policy::Action::kDeny);
  ASSERT_OK_AND_ASSIGN(ParsedCommand c2,
                       Parse({"list", "-t=web", "-o", "json"}));
  EXPECT_EQ(c2.request["target"], "web");
  EXPECT_EQ(c2.output, OutputFormat::kJson);
}

TEST(CliParseTest, HostNameIsResolvedAndKept) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c,
                       Parse({"allow", "smtp", "relay.example.org"}));
  ASSERT_OK_AND_ASSIGN(policy::Rule r, policy::RuleFromJson(c.request["rule"]));
  EXPECT_EQ(r.host, "relay.example.org");
  EXPECT_EQ(r.destinations[0].ToString(), "192.0.2.25");
  EXPECT_STATUS(Parse({"allow", "smtp", "nowhere.invalid"}),
                absl::StatusCode::kNotFound, "nowhere.invalid");
}

TEST(CliParseTest, TargetCommands) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand add,
                       Parse({"target", "add", "web", "--unit", "nginx.service",
                              "--mode", "audit"}));
  EXPECT_EQ(add.request, (json{{"cmd", "target_add"},
                               {"name", "web"},
                               {"source_kind", "unit"},
                               {"source", "nginx.service"},
                               {"mode", "audit"}}));
  ASSERT_OK_AND_ASSIGN(ParsedCommand rm, Parse({"target", "remove", "web"}));
  EXPECT_EQ(rm.request, (json{{"cmd", "target_remove"}, {"name", "web"}}));
  EXPECT_STATUS(Parse({"target", "add", "web"}),
                absl::StatusCode::kInvalidArgument, "exactly one of --cgroup");
  EXPECT_STATUS(Parse({"target", "add", "web", "--cgroup", "/a", "--pid", "1"}),
                absl::StatusCode::kInvalidArgument, "exactly one of");
  EXPECT_STATUS(
      Parse({"target", "add", "web", "--cgroup", "/a", "--mode", "observe"}),
      absl::StatusCode::kInvalidArgument, "unknown mode 'observe'");
  EXPECT_STATUS(Parse({"target", "frob"}), absl::StatusCode::kInvalidArgument,
                "'frob'");
}

TEST(CliParseTest, DeleteByNumberOrRule) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand n, Parse({"delete", "3"}));
  EXPECT_EQ(n.request["number"], 3);
  ASSERT_OK_AND_ASSIGN(ParsedCommand r,
                       Parse({"delete", "allow", "dns", "10.0.0.53"}));
  EXPECT_TRUE(r.request.contains("rule"));
  EXPECT_STATUS(Parse({"delete", "0"}), absl::StatusCode::kInvalidArgument,
                "'0'");
  EXPECT_STATUS(Parse({"delete", "3", "4"}), absl::StatusCode::kInvalidArgument,
                "'4'");
  EXPECT_STATUS(Parse({"delete", "permit", "dns"}),
                absl::StatusCode::kInvalidArgument, "'permit'");
}

TEST(CliParseTest, RunCollectsAllowsAndCommand) {
  ASSERT_OK_AND_ASSIGN(
      ParsedCommand c,
      Parse({"run", "--allow", "dns 127.0.0.53", "--allow", "443/tcp",
             "--target-name", "job", "--", "python3", "-m", "http.server",
             "--bind", "127.0.0.1"}));
  EXPECT_EQ(c.cmd, "run");
  EXPECT_EQ(c.request["name"], "job");
  EXPECT_EQ(c.request["ephemeral"], true);
  EXPECT_EQ(c.request["rules"].size(), 2u);
  // Options after "--" belong to the command.
  EXPECT_EQ(c.run_argv,
            (std::vector<std::string>{"python3", "-m", "http.server", "--bind",
                                      "127.0.0.1"}));
  EXPECT_STATUS(Parse({"run", "--allow", "dns 127.0.0.53"}),
                absl::StatusCode::kInvalidArgument, "usage: run");
  EXPECT_STATUS(Parse({"run", "python3"}), absl::StatusCode::kInvalidArgument,
                "'python3'");
  EXPECT_STATUS(Parse({"run", "--allow", "smpt", "--", "true"}),
                absl::StatusCode::kInvalidArgument, "smpt");
}

TEST(CliParseTest, ErrorsNameTheWord) {
  EXPECT_STATUS(Parse({}), absl::StatusCode::kInvalidArgument, "no command");
  EXPECT_STATUS(Parse({"alow"}), absl::StatusCode::kInvalidArgument, "'alow'");
  EXPECT_STATUS(Parse({"allow"}), absl::StatusCode::kInvalidArgument,
                "usage: allow");
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

TEST(CliParseTest, HelpAndVersion) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand h, Parse({"--help"}));
  EXPECT_EQ(h.cmd, "help");
  ASSERT_OK_AND_ASSIGN(ParsedCommand v, Parse({"version"}));
  EXPECT_EQ(v.cmd, "version");
  EXPECT_NE(UsageText().find("target add NAME"), std::string::npos);
}

TEST(CliParseTest, AllowForADurationSendsSeconds) {
  ASSERT_OK_AND_ASSIGN(ParsedCommand c,
                       Parse({"allow", "smtp", "10.0.0.5", "--for", "30m"}));
  EXPECT_EQ(c.request["for_seconds"], 1800);
  ASSERT_OK_AND_ASSIGN(c, Parse({"allow", "--for", "1h30m", "dns"}));
  EXPECT_EQ(c.request["for_seconds"], 5400);
  ASSERT_OK_AND_ASSIGN(c, Parse({"deny", "any", "10.0.0.9", "--for", "7d"}));
  EXPECT_EQ(c.request["for_seconds"], 7 * 86400);
  ASSERT_OK_AND_ASSIGN(c, Parse({"allow", "smtp", "10.0.0.5"}));
  EXPECT_FALSE(c.request.contains("for_seconds"));
}

TEST(CliParseTest, BadDurationsNameTheFlag) {
  for (const char* bad :
       {"", "0s", "-5m", "30", "soon", "1y", "500ms", "4000d", "0d"}) {
    auto c = Parse({"allow", "smtp", "10.0.0.5", "--for", bad});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("--for wants a duration"),
              std::string::npos)
        << c.status();
  }
  // --for belongs to allow/deny only.
  EXPECT_FALSE(Parse({"list", "--for", "30m"}).ok());
}

}  // namespace
}  // namespace egress::cli
