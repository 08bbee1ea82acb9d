// Bad operator input: exit status 2, a message naming the bad word, and the
// enforced policy unchanged.
#include <errno.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class CliInputTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    AddTarget("web");
    CtlOk({"allow", "40001/tcp", "127.0.0.2"});
    before_ = CtlJson({"list"});
  }
  // Runs a bad command and checks the contract.
  void ExpectRejected(const std::vector<std::string>& args,
                      const std::string& message_part, int code = 2) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, code) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, message_part))
        << "message should name '" << message_part << "': " << r.output;
    EXPECT_EQ(CtlJson({"list"}), before_)
        << "a rejected command changed the rules";
  }
  nlohmann::json before_;
};

TEST_F(CliInputTest, UnknownServiceSuggestsTheRightOne) {
  ExpectRejected({"allow", "smpt", "127.0.0.5"}, "smpt");
  ExpectRejected({"allow", "smpt"}, "did you mean 'smtp'");
}

TEST_F(CliInputTest, BadPortsAndRanges) {
  ExpectRejected({"allow", "0/tcp"}, "'0");
  ExpectRejected({"allow", "70000/tcp"}, "70000");
  ExpectRejected({"allow", "2000-1000/tcp"}, "2000-1000");
  ExpectRejected({"allow", "25/sctp"}, "sctp");
}

TEST_F(CliInputTest, BadAddresses) {
  ExpectRejected({"allow", "smtp", "10.0.0.256"}, "10.0.0.256");
  ExpectRejected({"allow", "smtp", "10.0.0.1/8"}, "host bits set");
  ExpectRejected({"allow", "smtp", "10.0.0.0/33"}, "10.0.0.0/33");
}

TEST_F(CliInputTest, InboundIsRefusedWithAnExplanation) {
  ExpectRejected({"allow", "in", "22/tcp"}, "only controls outgoing");
}

TEST_F(CliInputTest, UnknownCommandsOptionsAndTargets) {
  ExpectRejected({"alow", "smtp"}, "alow");
  ExpectRejected({"allow", "smtp", "--frobnicate", "x"}, "--frobnicate");
  ExpectRejected({"allow", "smtp", "--target", "nosuch"}, "nosuch");
  ExpectRejected({"delete", "7"}, "no rule number 7");
  ExpectRejected({"mode", "observe"}, "observe");
  ExpectRejected({"target", "add", "x y", "--cgroup", "/a"}, "x y");
  ExpectRejected({"target", "add", "web2", "--cgroup", "/a/../b"}, "..");
  ExpectRejected({"target", "add", "web", "--cgroup", "/elsewhere"}, "exists");
  ExpectRejected({"target", "add", "web3"}, "--cgroup");
}

TEST_F(CliInputTest, DaemonNotRunningIsExitOne) {
  StopDaemon(SIGTERM);
  CommandResult r = Ctl({"list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.output, "is egressd running")) << r.output;
  StartDaemon();
}

TEST_F(CliInputTest, EnforcementUnchangedAfterRejections) {
  ExpectRejected({"allow", "smpt"}, "smpt");
  ExpectRejected({"deny", "any", "300.1.1.1"}, "300.1.1.1");
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }),
            ECONNREFUSED);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
}

TEST_F(CliInputTest, UfwLongFormAndDuplicates) {
  CtlOk({"allow", "out", "proto", "tcp", "to", "127.0.0.7", "port", "40025"});
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.7", 40025); }),
            ECONNREFUSED);
  std::string again = CtlOk(
      {"allow", "out", "proto", "tcp", "to", "127.0.0.7", "port", "40025"});
  EXPECT_TRUE(absl::StrContains(again, "Skipping")) << again;
  nlohmann::json list = CtlJson({"list"});
  EXPECT_EQ(list["targets"][0]["rules"].size(), 2u);
  CtlOk({"delete", "2"});
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.7", 40025); }), EPERM);
}

}  // namespace
}  // namespace egress::testing
