// The fixture of the suites whose targets name containers of a runtime with
// Docker's API (ContainerTargetTest: dockerd, PodmanTargetTest: Podman): one
// runtime per suite (started in SetUpTestSuite, its busybox image imported;
// a start error fails every test of the suite), egressd following it,
// an allowed and a denied listener on loopback per test, every container
// removed after each test, and the helpers the tests drive containers with.
#ifndef EGRESS_TESTS_PRIVILEGED_RUNTIME_TARGET_FIXTURE_H_
#define EGRESS_TESTS_PRIVILEGED_RUNTIME_TARGET_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/docker_api_runtime.h"
#include "tests/testing/listeners.h"
#include "tests/testing/poll.h"

namespace egress::testing {

// `Runtime` is a DockerApiRuntime with a static Start().
template <typename Runtime>
class RuntimeTargetTest : public EgressdTest {
 protected:
  static constexpr const char* kImage = "egress-test-busybox:1";
  // busybox nc's words for a connect the kernel refused with EPERM.
  static constexpr const char* kEperm = "Operation not permitted";

  static void SetUpTestSuite() {
    auto r = Runtime::Start();
    if (!r.ok()) {
      start_error_ = new std::string(r.status().ToString());
      return;
    }
    runtime_ = r->release();
    if (absl::Status st = runtime_->ImportBusybox(kImage); !st.ok()) {
      start_error_ = new std::string(st.ToString());
    }
  }
  static void TearDownTestSuite() {
    delete runtime_;
    runtime_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  // What egressd is started with to follow the runtime.
  virtual std::vector<std::string> FollowArgs() const = 0;

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_NE(runtime_, nullptr);
    extra_daemon_args_ = FollowArgs();
    EgressdTest::SetUp();
    auto allowed = TcpListener::Create("127.0.0.1");
    ASSERT_TRUE(allowed.ok()) << allowed.status();
    allowed_ = *std::move(allowed);
    auto denied = TcpListener::Create("127.0.0.1");
    ASSERT_TRUE(denied.ok()) << denied.status();
    denied_ = *std::move(denied);
  }
  void TearDown() override {
    if (runtime_ != nullptr) {
      absl::Status st = runtime_->RemoveAllContainers();
      EXPECT_TRUE(st.ok()) << st;
    }
    EgressdTest::TearDown();
  }

  // `run -d [run_flags] --name NAME --network host [labels] IMAGE sleep 600`.
  void RunSleeper(const std::string& name,
                  const std::vector<std::string>& labels = {}) {
    std::vector<std::string> args = {"run", "-d"};
    args.insert(args.end(), runtime_->run_flags().begin(),
                runtime_->run_flags().end());
    args.insert(args.end(), {"--name", name, "--network", "host"});
    for (const std::string& l : labels) {
      args.push_back("--label");
      args.push_back(l);
    }
    args.insert(args.end(), {kImage, "sleep", "600"});
    auto r = runtime_->CliOk(args);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // `exec NAME nc 127.0.0.1 PORT`: its output and exit code.
  CommandResult ExecConnect(const std::string& name, uint16_t port) {
    auto r =
        runtime_->Cli({"exec", name, "sh", "-c",
                       absl::StrCat("echo hi | nc -w 2 127.0.0.1 ", port)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  // Polls (bounded by find_limit_) until a connect from the container to
  // `port` is refused with EPERM: the target found it (the watcher hears of
  // a container that `run -d` has just started a moment later).
  bool WaitRefused(const std::string& name, uint16_t port) {
    return PollUntil(
        [&] {
          return absl::StrContains(ExecConnect(name, port).output, kEperm);
        },
        find_limit_, absl::Milliseconds(100));
  }

  // Polls (bounded by find_limit_) until the target's policy decides the
  // container: a connect to `allowed` works. Before, a new container below
  // the watched parent is refused everything (unclassified).
  bool WaitAllowed(const std::string& name, uint16_t allowed) {
    return PollUntil([&] { return ExecConnect(name, allowed).exit_code == 0; },
                     find_limit_, absl::Milliseconds(100));
  }

  void Allow(const std::string& target, uint16_t port) {
    CtlOk(
        {"allow", absl::StrCat(port, "/tcp"), "127.0.0.1", "--target", target});
  }

  static inline Runtime* runtime_ = nullptr;
  static inline std::string* start_error_ = nullptr;
  // How long WaitRefused and WaitAllowed wait for the watcher.
  absl::Duration find_limit_ = absl::Seconds(10);
  std::unique_ptr<TcpListener> allowed_, denied_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_PRIVILEGED_RUNTIME_TARGET_FIXTURE_H_
