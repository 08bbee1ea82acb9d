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
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/podman.h"

namespace egress::testing {
namespace {

constexpr const char* kImage = "egress-test-busybox:1";
// busybox nc's words for a connect the kernel refused with EPERM.
constexpr const char* kEperm = "Operation not permitted";

class PodmanTargetTest : public EgressdTest {
 protected:
  static void SetUpTestSuite() {
    auto p = Podman::Start();
    if (!p.ok()) {
      start_error_ = new std::string(p.status().ToString());
      return;
    }
    podman_ = p->release();
    if (absl::Status st = podman_->ImportBusybox(kImage); !st.ok()) {
      start_error_ = new std::string(st.ToString());
    }
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_NE(podman_, nullptr);
    // Podman only: no Docker socket, so what is found is Podman's. The
    // containers' parent is watched: a new container is decided from its
    // first instruction, not once the watcher has heard of it.
    extra_daemon_args_ = {"--podman_socket", podman_->socket(),
                          "--docker_socket=", "--container_parent",
                          podman_->cgroup_parent()};
    EgressdTest::SetUp();
    auto allowed = TcpListener::Create("127.0.0.1");
    ASSERT_TRUE(allowed.ok()) << allowed.status();
    allowed_ = *std::move(allowed);
    auto denied = TcpListener::Create("127.0.0.1");
    ASSERT_TRUE(denied.ok()) << denied.status();
    denied_ = *std::move(denied);
  }
  void TearDown() override {
    if (podman_ != nullptr) {
      absl::Status st = podman_->RemoveAllContainers();
      EXPECT_TRUE(st.ok()) << st;
    }
    EgressdTest::TearDown();
  }

  // `podman run -d --network host [labels] IMAGE sleep 600`, below the
  // fixture's cgroup parent, from the local image only.
  void RunSleeper(const std::string& name,
                  const std::vector<std::string>& labels = {}) {
    std::vector<std::string> args = {"run",
                                     "-d",
                                     "--pull",
                                     "never",
                                     "--name",
                                     name,
                                     "--network",
                                     "host",
                                     "--cgroup-parent",
                                     podman_->cgroup_parent()};
    for (const std::string& l : labels) {
      args.push_back("--label");
      args.push_back(l);
    }
    args.insert(args.end(), {kImage, "sleep", "600"});
    auto r = podman_->RunOk(args);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // `podman exec NAME nc 127.0.0.1 PORT`: its output and exit code.
  CommandResult ExecConnect(const std::string& name, uint16_t port) {
    auto r = podman_->Run({"exec", name, "sh", "-c",
                           absl::StrCat("echo hi | nc -w 2 127.0.0.1 ", port)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  // Polls (bounded) until a connect from the container to `port` is refused
  // with EPERM: the target found it (the watcher hears of a container that
  // `podman run -d` has just started a moment later).
  bool WaitRefused(const std::string& name, uint16_t port) {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    do {
      if (absl::StrContains(ExecConnect(name, port).output, kEperm)) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    return false;
  }

  // Polls (bounded) until the target's policy decides the container: a
  // connect to `allowed` works. Before, a new container below the watched
  // parent is refused everything (unclassified).
  bool WaitAllowed(const std::string& name, uint16_t allowed) {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    do {
      if (ExecConnect(name, allowed).exit_code == 0) return true;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    return false;
  }

  void Allow(const std::string& target, uint16_t port) {
    CtlOk(
        {"allow", absl::StrCat(port, "/tcp"), "127.0.0.1", "--target", target});
  }

  static Podman* podman_;
  static std::string* start_error_;
  std::unique_ptr<TcpListener> allowed_, denied_;
};

Podman* PodmanTargetTest::podman_ = nullptr;
std::string* PodmanTargetTest::start_error_ = nullptr;

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
    auto rm = podman_->Run({"rm", "-f", "-t", "0", "web"});
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
  auto id = podman_->RunOk({"inspect", "-f", "{{.Id}}", "web"});
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
