// Targets that name Podman containers (--container, --selector), found
// through Podman's Docker-compatible API (egressd --podman_socket): a real
// `podman system service` (tests/testing/podman.h, one per suite), real
// containers on the host network, connects to loopback only. Enforcement
// follows a container by name across `podman rm -f` + `podman run --name`,
// records name the container and a selector picks the labelled ones.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/runtime_target_fixture.h"
#include "tests/testing/podman.h"

namespace egress::testing {
namespace {

class PodmanTargetTest : public RuntimeTargetTest<Podman> {
 protected:
  PodmanTargetTest() { find_limit_ = absl::Seconds(15); }

  // Podman only: no Docker socket, so what is found is Podman's. The
  // containers' parent is watched: a new container is decided from its
  // first instruction, not once the watcher has heard of it.
  std::vector<std::string> FollowArgs() const override {
    return {"--podman_socket", runtime_->socket(),
            "--docker_socket=", "--container_parent",
            runtime_->cgroup_parent()};
  }
};

TEST_F(PodmanTargetTest, NamedContainerAllowedConnectsOthersRefused) {
  RunSleeper("web");
  CtlOk({"target", "add", "web", "--container", "web"});
  Allow("web", allowed_->port());
  ASSERT_TRUE(WaitRefused("web", denied_->port())) << DaemonLog();
  ASSERT_TRUE(WaitAllowed("web", allowed_->port())) << DaemonLog();

  CommandResult ok = ExecConnect("web", allowed_->port());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(allowed_->WaitForAccepted(1)) << ok.output;
  CommandResult refused = ExecConnect("web", denied_->port());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(refused.output, kEperm)) << refused.output;
  EXPECT_EQ(denied_->accepted(), 0);
}

TEST_F(PodmanTargetTest, RecreatedUnderTheSameNameStaysEnforced) {
  CtlOk({"target", "add", "web", "--container", "web"});
  Allow("web", allowed_->port());
  constexpr int kRuns = 3;
  for (int i = 0; i < kRuns; ++i) {
    auto rm = runtime_->Cli({"rm", "-f", "-t", "0", "web"});
    ASSERT_TRUE(rm.ok()) << rm.status();
    RunSleeper("web");
    ASSERT_TRUE(WaitRefused("web", denied_->port())) << "run " << i << "\n"
                                                     << DaemonLog();
    EXPECT_TRUE(WaitAllowed("web", allowed_->port())) << "run " << i;
    CommandResult refused = ExecConnect("web", denied_->port());
    EXPECT_TRUE(absl::StrContains(refused.output, kEperm))
        << "run " << i << ": " << refused.output;
  }
  EXPECT_TRUE(allowed_->WaitForAccepted(kRuns));
  EXPECT_EQ(denied_->accepted(), 0);
}

TEST_F(PodmanTargetTest, RecordsNameTheContainer) {
  RunSleeper("web");
  RunSleeper("api");
  CtlOk({"target", "add", "web", "--container", "web"});
  CtlOk({"target", "add", "api", "--container", "api"});
  ASSERT_TRUE(WaitRefused("web", denied_->port()));
  ASSERT_TRUE(WaitRefused("api", denied_->port()));
  auto id = runtime_->CliOk({"inspect", "-f", "{{.Id}}", "web"});
  ASSERT_TRUE(id.ok()) << id.status();

  std::vector<nlohmann::json> web = Records({"--container", "web"}, 1);
  ASSERT_GE(web.size(), 1u);
  for (const nlohmann::json& e : web) {
    ASSERT_TRUE(e.contains("container")) << e.dump();
    EXPECT_EQ(e["container"]["name"], "web") << e.dump();
    EXPECT_EQ(e["container"]["id"], id->substr(0, 12)) << e.dump();
    // Podman names a local image localhost/NAME.
    EXPECT_TRUE(
        absl::StrContains(e["container"]["image"].get<std::string>(), kImage))
        << e.dump();
    EXPECT_EQ(e["target"], "web") << e.dump();
  }
  std::vector<nlohmann::json> api = Records({"--container", "api"}, 1);
  ASSERT_GE(api.size(), 1u);
  for (const nlohmann::json& e : api) {
    EXPECT_EQ(e["container"]["name"], "api") << e.dump();
  }
}

TEST_F(PodmanTargetTest, SelectorPicksTheLabelledContainers) {
  RunSleeper("front", {"app=web"});
  RunSleeper("db", {"app=db"});
  CtlOk({"target", "add", "fronts", "--selector", "app=web"});
  ASSERT_TRUE(WaitRefused("front", denied_->port()));
  // Not selected: not enforced at all.
  CommandResult db = ExecConnect("db", denied_->port());
  EXPECT_EQ(db.exit_code, 0) << db.output;
  EXPECT_TRUE(denied_->WaitForAccepted(1));
}

TEST_F(PodmanTargetTest, StatusSaysWhenPodmanIsNotReachable) {
  StopDaemon(SIGTERM);
  extra_daemon_args_ = {"--podman_socket", "/nonexistent/podman.sock",
                        "--docker_socket="};
  StartDaemon();
  CtlOk({"target", "add", "web", "--container", "web"});
  nlohmann::json status = CtlJson({"status"});
  std::string warnings;
  for (const nlohmann::json& t : status["targets"]) {
    for (const nlohmann::json& w : t["warnings"]) {
      absl::StrAppend(&warnings, w.get<std::string>(), "\n");
    }
  }
  EXPECT_TRUE(absl::StrContains(warnings, "/nonexistent/podman.sock"))
      << status.dump(2);
  EXPECT_TRUE(absl::StrContains(warnings, "--podman_socket")) << warnings;
}

}  // namespace
}  // namespace egress::testing
