// A sink that cannot write (a full disk under --events_file) costs records,
// never the daemon, and every lost record is counted in status and in
// egress_events_dropped_total{reason="sink"}.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
    RunCommand({"dd", "if=/dev/zero", "of=" + disk_ + "/filler", "bs=4k",
                absl::StrCat("count=", filler_pages_)})
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
  // 4 KiB pages of filler; the file system has 16. 64: none left.
  int filler_pages_ = 64;
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

// Room for a few lines only: a record whose write fails halfway leaves no
// partial line that the next record would be appended to, and each lost
// record is counted.
class PartialWriteTest : public SinkErrorsTest {
 protected:
  PartialWriteTest() { filler_pages_ = 15; }  // one page left: ~5 records
};

TEST_F(PartialWriteTest, FileHoldsOnlyWholeLinesAfterAFailedWrite) {
  AddTarget("web");
  const uint64_t read_before = CtlJson({"status"})["events_read"];
  constexpr int kFirst = 12;
  for (int i = 0; i < kFirst; ++i) {
    // A new destination each time: no record is rate limited.
    std::string host = absl::StrCat("127.0.2.", 10 + i);
    EXPECT_DENIED(InCgroup([host] { return TcpConnect(host, 40001); }));
  }
  auto wait_read = [this](uint64_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline &&
           CtlJson({"status"})["events_read"].get<uint64_t>() < n) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  };
  wait_read(read_before + kFirst);
  const uint64_t errors = CtlJson({"status"})["events_sink_errors"];
  ASSERT_GT(errors, 0u) << "the file system did not fill up";

  // Room again: the next records must start lines of their own.
  ASSERT_EQ(unlink((disk_ + "/filler").c_str()), 0);
  constexpr int kAfter = 3;
  for (int i = 0; i < kAfter; ++i) {
    std::string host = absl::StrCat("127.0.3.", 10 + i);
    EXPECT_DENIED(InCgroup([host] { return TcpConnect(host, 40001); }));
  }
  wait_read(read_before + kFirst + kAfter);
  std::string text;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    auto cat = RunCommand({"cat", disk_ + "/events.jsonl"});
    ASSERT_TRUE(cat.ok()) << cat.status();
    text = cat->output;
    if (absl::StrContains(text, "127.0.3.12")) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  int first_lines = 0;
  int after_lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not a JSON line: " << line;
    const std::string dest = j["l4"]["destination"];
    if (absl::StartsWith(dest, "127.0.2.")) ++first_lines;
    if (absl::StartsWith(dest, "127.0.3.")) ++after_lines;
  }
  EXPECT_TRUE(absl::EndsWith(text, "\n"));
  EXPECT_EQ(after_lines, kAfter) << text;
  // Every record of the first round is a whole line or a counted error.
  EXPECT_EQ(first_lines + errors, static_cast<uint64_t>(kFirst)) << text;
  EXPECT_EQ(CtlJson({"status"})["events_sink_errors"].get<uint64_t>(), errors);
}

}  // namespace
}  // namespace egress::testing
