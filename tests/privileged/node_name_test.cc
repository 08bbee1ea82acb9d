// The node name a real egressd writes into records and exported policies:
// --node_name, else NODE_NAME (what the DaemonSet sets from spec.nodeName),
// else the host name.

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class NodeNameRecordTest : public EgressdTest {
 protected:
  void TearDown() override {
    unsetenv("NODE_NAME");
    EgressdTest::TearDown();
  }

  // Restarts egressd with the current environment and `args`.
  void RestartDaemon(std::vector<std::string> args) {
    StopDaemon(SIGTERM);
    extra_daemon_args_ = std::move(args);
    StartDaemon();
  }

  // node_name of the record of one refused connect by target "web".
  std::string RecordedNodeName() {
    AddTarget("web");
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    do {
      CommandResult r =
          Ctl({"events", "--target", "web", "--last", "10", "-o", "json"});
      EXPECT_EQ(r.exit_code, 0) << r.output;
      for (absl::string_view line :
           absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.contains("node_name")) {
          return j["node_name"].get<std::string>();
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    ADD_FAILURE() << "no record of target web within 5 s";
    return "";
  }
};

TEST_F(NodeNameRecordTest, FlagNamesTheNodeInRecordsAndExports) {
  setenv("NODE_NAME", "node-from-env", 1);
  RestartDaemon({"--node_name=node-from-flag"});
  EXPECT_EQ(RecordedNodeName(), "node-from-flag");
  EXPECT_TRUE(absl::StrContains(CtlOk({"export", "--target", "web"}),
                                "Exported by egressd on node-from-flag"));
}

TEST_F(NodeNameRecordTest, NodeNameEnvironmentWithoutFlag) {
  setenv("NODE_NAME", "node-from-env", 1);
  RestartDaemon({});
  EXPECT_EQ(RecordedNodeName(), "node-from-env");
}

TEST_F(NodeNameRecordTest, HostNameWhenNeitherIsSet) {
  unsetenv("NODE_NAME");
  RestartDaemon({});
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(RecordedNodeName(), host);
}

TEST_F(NodeNameRecordTest, RefusesToStartWithANameNoNodeHas) {
  StopDaemon(SIGTERM);
  auto r = RunCommand(
      {EGRESS_EGRESSD_PATH, "--socket", socket_path_, "--bpffs", bpffs_dir_,
       "--state_dir", state_dir_, "--metrics_addr=", "--node_name=two words"},
      absl::Seconds(20));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->output;
  EXPECT_TRUE(absl::StrContains(r->output, "--node_name")) << r->output;
}

}  // namespace
}  // namespace egress::testing
