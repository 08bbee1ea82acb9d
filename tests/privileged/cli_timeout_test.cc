// egressctl against a hung egressd (stopped: the kernel still queues its
// connections, nobody answers) gives up after --timeout (30 s by default)
// with a message that names the socket and the wait, and says what became
// of the request: a change egressd has whole may still be applied, one it
// did not take whole was not.
#include <signal.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/poll.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CliTimeoutTest : public EgressdTest {
 protected:
  void TearDown() override {
    Continue();
    EgressdTest::TearDown();
  }
  // SIGSTOP: egressd accepts nothing and answers nothing until continued.
  void Stop() {
    ASSERT_EQ(kill(daemon_pid_, SIGSTOP), 0);
    stopped_ = true;
  }
  void Continue() {
    if (stopped_) kill(daemon_pid_, SIGCONT);
    stopped_ = false;
  }
  // Polls `egressctl list` (bounded, 10 s) until it shows `text`.
  bool ListShows(const std::string& text) {
    return PollUntil(
        [&] { return absl::StrContains(Ctl({"list"}).output, text); });
  }
  bool stopped_ = false;
};

TEST_F(CliTimeoutTest, AHungEgressdIsReportedAfterTheTimeout) {
  Stop();
  CommandResult r = Ctl({"--timeout", "2s", "status"});
  Continue();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(absl::StrCat("egressctl: egressd at ", socket_path_,
                                     " did not answer within 2s (--timeout; "
                                     "is it stopped or hung?)")));
  CtlOk({"status"});
}

TEST_F(CliTimeoutTest, AChangeEgressdHasWholeIsNotSaidToBeNotApplied) {
  AddTarget("web");
  Stop();
  CommandResult r = Ctl({"--timeout", "2s", "allow", "40001/tcp", "127.0.0.2"});
  Continue();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("did not answer within 2s"));
  EXPECT_THAT(r.output, HasSubstr("it may still be applied"));
  EXPECT_THAT(r.output, Not(HasSubstr("not applied")));
  // And it is: egressd read the request once it was continued.
  EXPECT_TRUE(ListShows("40001")) << Ctl({"list"}).output;
}

TEST_F(CliTimeoutTest, ARequestEgressdDidNotTakeWholeIsNotApplied) {
  // Megabytes: more than the socket holds for a reader that does not read.
  const std::string path =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/big.yaml";
  {
    std::ofstream f(path);
    f << PolicyHead("big", cg_->relative_path());
    for (int i = 0; i < 20000; ++i) {
      f << "  - to:\n    - ipBlock: {cidr: 127." << (i >> 8) % 256 << "."
        << i % 256 << ".1/32}\n    ports:\n    - {port: " << 1000 + i % 50000
        << ", protocol: TCP}\n";
    }
  }
  Stop();
  CommandResult r = Ctl({"--timeout", "2s", "apply", "-f", path});
  Continue();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(absl::StrCat("egressd at ", socket_path_,
                                     " did not take the whole request within "
                                     "2s (--timeout; is it stopped or hung?), "
                                     "so it was not applied")));
  // egressd, continued, reads the request cut short and applies none of it.
  CtlOk({"status"});
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_TRUE(targets["targets"].empty()) << targets.dump();
}

}  // namespace
}  // namespace egress::testing
