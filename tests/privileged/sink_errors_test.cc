// A sink that cannot write (a full disk under --events_file) costs records,
// never the daemon, and every lost record is counted in status and in
// egress_events_dropped_total{reason="sink"}.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class SinkErrorsTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (HasFatalFailure()) return;
    StopDaemon(SIGTERM);
    disk_ = state_dir_.substr(0, state_dir_.rfind('/')) + "/full";
    ASSERT_EQ(mkdir(disk_.c_str(), 0700), 0);
    // A small file system, then filled: every record write fails (ENOSPC).
    ASSERT_EQ(mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=64k"), 0);
    mounted_ = true;
    RunCommand(
        {"dd", "if=/dev/zero", "of=" + disk_ + "/filler", "bs=4k", "count=64"})
        .IgnoreError();
    extra_daemon_args_ = {"--events_file", disk_ + "/events.jsonl"};
    StartDaemon();
  }
  void TearDown() override {
    // egressd first (it holds the file), then the file system, then the
    // fixture removes the directories.
    StopDaemon(SIGKILL);
    if (mounted_) umount2(disk_.c_str(), MNT_DETACH);
    EgressdTest::TearDown();
  }
  std::string disk_;
  bool mounted_ = false;
};

TEST_F(SinkErrorsTest, FailedWritesAreCountedAndTheDaemonCarriesOn) {
  AddTarget("web");
  constexpr int kAttempts = 5;
  for (int i = 0; i < kAttempts; ++i) {
    // A new destination each time: no record is rate limited.
    std::string host = absl::StrCat("127.0.1.", 10 + i);
    EXPECT_DENIED(InCgroup([host] { return TcpConnect(host, 40001); }));
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  uint64_t errors = 0;
  while (absl::Now() < deadline) {
    errors = CtlJson({"status"})["events_sink_errors"].get<uint64_t>();
    if (errors >= kAttempts) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(errors, static_cast<uint64_t>(kAttempts));
  // Still serving, still enforcing; the records are still in memory.
  EXPECT_EQ(Counters("web")["denied"].get<uint64_t>(),
            static_cast<uint64_t>(kAttempts));
  CommandResult events = Ctl({"events", "--last", "10", "-o", "json"});
  EXPECT_TRUE(absl::StrContains(events.output, "127.0.1.14")) << events.output;
  int port = CtlJson({"status"})["metrics_port"].get<int>();
  auto metrics = RunCommand(
      {"python3", "-c",
       absl::StrCat("import urllib.request; print(urllib.request.urlopen("
                    "'http://127.0.0.1:",
                    port, "/metrics').read().decode())")});
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(absl::StrContains(
      metrics->output,
      absl::StrCat("egress_events_dropped_total{reason=\"sink\"} ", kAttempts)))
      << metrics->output;
}

}  // namespace
}  // namespace egress::testing
