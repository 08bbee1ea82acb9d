// The built binaries' own command lines: versions, egressd --help, and that
// a mistyped rule never reaches the resolver (no datagram leaves egressctl).
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/private_resolver.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

CommandResult RunBinary(const std::vector<std::string>& argv) {
  absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(20));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

TEST(CliBinaryTest, VersionsNameTheProjectVersionAndAbi) {
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{EGRESS_EGRESSCTL_PATH, "--version"},
        {EGRESS_EGRESSCTL_PATH, "version"},
        {EGRESS_EGRESSD_PATH, "--version"}}) {
    CommandResult r = RunBinary(argv);
    EXPECT_EQ(r.exit_code, 0) << argv[1] << ": " << r.output;
    EXPECT_THAT(r.output,
                MatchesRegex("egress(ctl|d) [0-9]+\\.[0-9]+\\.[0-9]+ \\(ABI "
                             "[0-9]+\\)\n"));
  }
}

TEST(CliBinaryTest, EgressdHelpListsItsOwnFlagsOnly) {
  CommandResult r = RunBinary({EGRESS_EGRESSD_PATH, "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* flag : {"--socket", "--bpffs", "--state_dir", "--policy_dir",
                           "--metrics_addr", "--events_file", "--version"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
  EXPECT_THAT(r.output, HasSubstr("default \"/run/egress/egressd.sock\""));
  EXPECT_THAT(r.output, Not(HasSubstr("gflags")));
  EXPECT_THAT(r.output, Not(HasSubstr(".cc")));
  EXPECT_THAT(r.output, Not(HasSubstr("/work/")));
  EXPECT_THAT(r.output, Not(HasSubstr("--flagfile")));
}

TEST(CliBinaryTest, EgressctlHelpForACommandExitsZero) {
  CommandResult r =
      RunBinary({EGRESS_EGRESSCTL_PATH, "target", "add", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("usage: egressctl target add NAME"));
  EXPECT_THAT(r.output, Not(HasSubstr("egressctl target remove NAME\n")));
}

class CliLookupTest : public EgressdTest {
 protected:
  PrivateResolverRun CtlWithPrivateResolver(std::vector<std::string> args) {
    std::vector<std::string> argv = {EGRESS_EGRESSCTL_PATH, "--socket",
                                     socket_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<PrivateResolverRun> r = RunWithPrivateResolver(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : PrivateResolverRun{};
  }
};

// `allow 443 tcp` means 443/tcp: exit 2 naming 'tcp', and "tcp" is never
// sent to a DNS server; a name rule is added without any lookup either
// (names are rules, learned from the target's own answers). The positive
// control proves the harness sees a lookup when one happens.
TEST_F(CliLookupTest, NoRuleSendsADnsQuery) {
  AddTarget("web");
  PrivateResolverRun typo = CtlWithPrivateResolver({"allow", "443", "tcp"});
  EXPECT_EQ(typo.exit_code, 2) << typo.output;
  EXPECT_THAT(typo.output, HasSubstr("'tcp' is not a destination"));
  EXPECT_THAT(typo.output, HasSubstr("did you mean 443/tcp?"));
  EXPECT_EQ(typo.dns_datagrams, 0);

  PrivateResolverRun name =
      CtlWithPrivateResolver({"allow", "443/tcp", "host.example.test"});
  EXPECT_EQ(name.exit_code, 0) << name.output;
  EXPECT_EQ(name.dns_datagrams, 0) << name.output;
  PrivateResolverRun wildcard =
      CtlWithPrivateResolver({"allow", "https", "*.example.test"});
  EXPECT_EQ(wildcard.exit_code, 0) << wildcard.output;
  EXPECT_EQ(wildcard.dns_datagrams, 0) << wildcard.output;
  EXPECT_EQ(CtlJson({"list"})["targets"][0]["rules"].size(), 2u);

  absl::StatusOr<PrivateResolverRun> control =
      RunWithPrivateResolver({"/usr/bin/getent", "hosts", "host.example.test"});
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_GE(control->dns_datagrams, 1)
      << "the harness did not see a lookup: " << control->output;
}

}  // namespace
}  // namespace egress::testing
