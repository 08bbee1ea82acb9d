// `egressctl events --follow` against a real egressd: what a follower that
// reads gets of a burst of records, all of it.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

// `egressctl events --follow ARGS...` with its stdout read as fast as it
// comes by a thread of the test. Killed and reaped when destroyed.
class Follower {
 public:
  Follower(const std::string& socket_path,
           const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      std::vector<std::string> all = {"egressctl", "--socket", socket_path,
                                      "events", "--follow"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(EGRESS_EGRESSCTL_PATH, argv.data());
      _exit(127);
    }
    close(out[1]);
    if (pid_ < 0) {
      close(out[0]);
      return;
    }
    reader_ = std::thread([this, fd = out[0]] {
      char buf[65536];
      while (true) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        std::lock_guard<std::mutex> lock(mu_);
        got_.append(buf, static_cast<size_t>(n));
      }
      close(fd);
    });
  }
  ~Follower() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();  // EOF once egressctl is gone
  }

  bool started() const { return pid_ > 0; }

  // The complete lines so far.
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> lines = absl::StrSplit(got_, '\n');
    lines.pop_back();  // after the last newline
    return lines;
  }

  // Polls (bounded by `timeout`) until `done(Lines())`; returns the lines.
  std::vector<std::string> WaitFor(
      const std::function<bool(const std::vector<std::string>&)>& done,
      absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<std::string> lines = Lines();
    while (!done(lines) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      lines = Lines();
    }
    return lines;
  }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::string got_;
};

// The destinations of the `connect` records among `lines` (JSON), in order.
std::vector<std::string> Destinations(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("event", "") != "connect") continue;
    out.push_back(j["l4"]["destination"].get<std::string>());
  }
  return out;
}

// 127.1.x.y, the i-th address of a burst: each a rate-limit key of its own.
std::string BurstAddress(int i) {
  return "127.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
}

// In a child in the target cgroup: `count` UDP connect()s to port 7 of
// `first` + i (host order), each refused; returns how many were refused.
int DenyBurst(int count, uint32_t first = 0x7f010000u) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int denied = 0;
  for (int i = 0; i < count; ++i) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(7);
    to.sin_addr.s_addr = htonl(first + static_cast<uint32_t>(i));
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 &&
        errno == EPERM) {
      ++denied;
    }
  }
  close(fd);
  return denied;
}

class FollowTest : public EgressdTest {
 protected:
  // Refuses connects to 127.0.0.2:40002 until `f` shows one (it has
  // subscribed); bounded.
  void WaitUntilSubscribed(Follower& f) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (int i = 0; i < 50 && absl::Now() < deadline; ++i) {
      EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
      if (!f.WaitFor([](const auto& l) { return !l.empty(); },
                     absl::Milliseconds(200))
               .empty()) {
        return;
      }
    }
    FAIL() << "the follower never showed a record";
  }
};

TEST_F(FollowTest, BurstLargerThanTheFollowerBufferReachesAReadingFollower) {
  AddTarget("web");
  Follower f(socket_path_, {"--target", "web", "-o", "json"});
  ASSERT_TRUE(f.started());
  ASSERT_NO_FATAL_FAILURE(WaitUntilSubscribed(f));

  // 5000 records of ~700 bytes: over 3 MiB, three times a follower's buffer,
  // made within a fraction of a drain period.
  constexpr int kBurst = 5000;
  const nlohmann::json before = Counters("web");
  EXPECT_EQ(InCgroup([] { return DenyBurst(kBurst); }), kBurst);
  std::vector<std::string> lines = f.WaitFor(
      [](const auto& l) {
        return Destinations(l).size() >= static_cast<size_t>(kBurst);
      },
      absl::Seconds(10));
  const nlohmann::json after = Counters("web");
  ASSERT_EQ(after["events_lost"], before["events_lost"])
      << "the ring buffer overflowed: not what this test is about";
  ASSERT_EQ(after["events_suppressed"], before["events_suppressed"]);

  std::multiset<std::string> burst;
  for (const std::string& d : Destinations(lines)) {
    if (d.rfind("127.1.", 0) == 0) burst.insert(d);
  }
  EXPECT_EQ(burst.size(), static_cast<size_t>(kBurst));
  for (int i = 0; i < kBurst; ++i) {
    ASSERT_EQ(burst.count(BurstAddress(i)), 1u) << BurstAddress(i);
  }
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("records_dropped"), std::string::npos) << line;
  }
}

// `events --follow --last N` while its backlog is still being written (the
// client does not read yet): the records made meanwhile come in the stream
// after the backlog, none lost and none twice.
TEST_F(FollowTest, RecordsMadeWhileTheBacklogIsSentFollowIt) {
  AddTarget("web");
  // A backlog of ~2 MiB: far more than a socket buffer holds.
  constexpr int kBacklog = 3000;
  const uint64_t read_before = CtlJson({"status"})["events_read"];
  ASSERT_EQ(InCgroup([] { return DenyBurst(kBacklog); }), kBacklog);
  auto read_at_least = [this](uint64_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    uint64_t read = 0;
    while (absl::Now() < deadline) {
      read = CtlJson({"status"})["events_read"].get<uint64_t>();
      if (read >= n) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return read;
  };
  ASSERT_GE(read_at_least(read_before + kBacklog), read_before + kBacklog);

  // The client: asks, then does not read until the records below are made.
  UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(socket_path_.size(), sizeof(addr.sun_path));
  socket_path_.copy(addr.sun_path, socket_path_.size());
  ASSERT_EQ(
      connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
      0)
      << strerror(errno);
  const std::string request =
      "{\"cmd\":\"events\",\"follow\":true,\"format\":\"json\","
      "\"last\":4096,\"target\":\"web\"}\n";
  ASSERT_EQ(write(client.get(), request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  // The first bytes of the answer: the backlog has been taken.
  pollfd p{client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "no answer";

  constexpr int kDuring = 200;
  const uint64_t read_mid = CtlJson({"status"})["events_read"];
  ASSERT_EQ(InCgroup([] { return DenyBurst(kDuring, 0x7f020000u); }), kDuring);
  ASSERT_GE(read_at_least(read_mid + kDuring), read_mid + kDuring);

  // Now read: the answer (the backlog), then the stream.
  std::string got;
  std::vector<std::string> backlog;
  std::vector<std::string> stream;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto during_seen = [&] {
    size_t n = 0;
    for (const auto* lines : {&backlog, &stream}) {
      for (const std::string& d : Destinations(*lines)) {
        if (d.rfind("127.2.", 0) == 0) ++n;
      }
    }
    return n;
  };
  while (during_seen() < kDuring && absl::Now() < deadline) {
    if (poll(&p, 1, 100) != 1) continue;
    char buf[65536];
    ssize_t n = read(client.get(), buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = got.find('\n')) != std::string::npos) {
      std::string line = got.substr(0, nl);
      got.erase(0, nl + 1);
      if (backlog.empty() && stream.empty()) {
        nlohmann::json answer = nlohmann::json::parse(line, nullptr, false);
        ASSERT_FALSE(answer.is_discarded()) << line.substr(0, 200);
        ASSERT_TRUE(answer.contains("lines")) << line.substr(0, 200);
        for (const auto& l : answer["lines"]) {
          backlog.push_back(l.get<std::string>());
        }
        ASSERT_FALSE(backlog.empty());
      } else {
        stream.push_back(line);
      }
    }
  }
  size_t backlog_burst = 0;
  for (const std::string& d : Destinations(backlog)) {
    if (d.rfind("127.1.", 0) == 0) ++backlog_burst;
  }
  EXPECT_EQ(backlog_burst, static_cast<size_t>(kBacklog));
  std::multiset<std::string> during;
  for (const auto* lines : {&backlog, &stream}) {
    for (const std::string& d : Destinations(*lines)) {
      if (d.rfind("127.2.", 0) == 0) during.insert(d);
    }
  }
  EXPECT_EQ(during.size(), static_cast<size_t>(kDuring))
      << stream.size() << " lines streamed";
  std::string wrong;  // each destination not seen exactly once, and times
  for (int i = 0; i < kDuring; ++i) {
    const std::string d = "127.2.0." + std::to_string(i);
    if (during.count(d) != 1) {
      wrong += " " + d + "x" + std::to_string(during.count(d));
    }
  }
  EXPECT_EQ(wrong, "");
}

// A follower is told when egressd goes away: a message on stderr and a
// failing exit status, not a silent exit 0 a script would take for success.
TEST_F(FollowTest, FollowEndsWithAMessageAndFailureWhenEgressdStops) {
  AddTarget("web");
  int out[2], err[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    execl(EGRESS_EGRESSCTL_PATH, "egressctl", "--socket", socket_path_.c_str(),
          "events", "--follow", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  UniqueFd stdout_of(out[0]);
  UniqueFd stderr_of(err[0]);
  absl::Cleanup reap = [pid] {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  // Denials until the follower shows one: it has subscribed (bounded).
  bool subscribed = false;
  pollfd p{stdout_of.get(), POLLIN, 0};
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (int i = 0; i < 50 && !subscribed && absl::Now() < deadline; ++i) {
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
    subscribed = poll(&p, 1, 200) == 1;
  }
  ASSERT_TRUE(subscribed) << "the follower never showed a record";

  StopDaemon(SIGTERM);
  absl::StatusOr<int> ws = WaitPidUntil(pid, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(ws.ok()) << "egressctl still follows a stopped egressd";
  std::move(reap).Cancel();
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(stderr_of.get(), buf, sizeof(buf))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(ExitCodeFromWaitStatus(*ws), 1) << text;
  EXPECT_NE(text.find("egressctl: egressd closed the stream"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace egress::testing
