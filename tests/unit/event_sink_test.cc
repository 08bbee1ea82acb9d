// Event sinks: file rotation, reopening, errors, fan-out and syslog.
#include "userspace/events/event_sink.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace {

// Hands a sink a record already rendered as `json` and `text`: the sinks
// under test only write those forms.
void Deliver(EventSink& sink, const std::string& json,
             const std::string& text) {
  EventRecord record;
  RenderedEvent event(record, json, text);
  sink.Write(event);
}

// A fresh directory under TMPDIR, removed (with its files) afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base ? base : "/tmp", "/event_sink.XXXXXX");
    char* made = mkdtemp(tmpl.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() { Remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static void Remove(const std::string& p) {
    if (p.empty()) return;
    chmod(p.c_str(), 0700);
    if (DIR* d = opendir(p.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        std::string child = absl::StrCat(p, "/", name);
        struct stat st;
        if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
          Remove(child);
        } else {
          unlink(child.c_str());
        }
      }
      closedir(d);
    }
    rmdir(p.c_str());
  }
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.insert(name);
    }
    closedir(d);
  }
  return out;
}

// Records of 10 bytes with their newline: "{\"n\":NNN}".
std::string Line(int n) {
  char buf[16];
  snprintf(buf, sizeof(buf), "{\"n\":%03d}", n);
  return buf;
}

TEST(RotatingFileSinkTest, RotatesAndDropsTheOldest) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  // The directory does not exist yet: the sink creates it.
  std::string dir = tmp.path() + "/log/egress";
  std::string path = dir + "/events.json";
  auto sink = RotatingFileSink(path, /*max_bytes=*/30, /*keep=*/2);
  ASSERT_TRUE(sink.ok()) << sink.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  mode_t mask = umask(0);
  umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask);
  // 3 lines of 10 bytes fill a file; the 4th starts a new one.
  for (int i = 1; i <= 11; ++i) Deliver(**sink, Line(i), "");
  EXPECT_EQ((*sink)->errors(), 0u);
  // Files were filled with 1-3, 4-6, 7-9 and 10-11; with keep=2 the current
  // file and the two newest old ones stay: 1-3 was dropped.
  EXPECT_EQ(Names(dir), (std::set<std::string>{"events.json", "events.json.1",
                                               "events.json.2"}));
  EXPECT_EQ(ReadFile(path), Line(10) + "\n" + Line(11) + "\n");
  EXPECT_EQ(ReadFile(path + ".1"),
            Line(7) + "\n" + Line(8) + "\n" + Line(9) + "\n");
  EXPECT_EQ(ReadFile(path + ".2"),
            Line(4) + "\n" + Line(5) + "\n" + Line(6) + "\n");
  EXPECT_FALSE(Exists(path + ".3"));
}

TEST(RotatingFileSinkTest, AppendsToAnExistingFileAndCountsItsSize) {
  TempDir tmp;
  std::string path = tmp.path() + "/events.json";
  {
    std::ofstream out(path);
    out << Line(0) << "\n" << Line(0) << "\n";  // 20 bytes already
  }
  auto sink = RotatingFileSink(path, 30, 1);
  ASSERT_TRUE(sink.ok()) << sink.status();
  Deliver(**sink, Line(1), "");  // 30: fits exactly
  Deliver(**sink, Line(2), "");  // would be 40: rotates first
  EXPECT_EQ(ReadFile(path + ".1"),
            Line(0) + "\n" + Line(0) + "\n" + Line(1) + "\n");
  EXPECT_EQ(ReadFile(path), Line(2) + "\n");
}

TEST(RotatingFileSinkTest, KeepZeroKeepsNoOldFiles) {
  TempDir tmp;
  std::string path = tmp.path() + "/events.json";
  auto sink = RotatingFileSink(path, 20, 0);
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 1; i <= 5; ++i) Deliver(**sink, Line(i), "");
  EXPECT_EQ(Names(tmp.path()), std::set<std::string>{"events.json"});
  EXPECT_EQ(ReadFile(path), Line(5) + "\n");
}

TEST(RotatingFileSinkTest, OversizedLineIsWrittenAlone) {
  TempDir tmp;
  std::string path = tmp.path() + "/events.json";
  auto sink = RotatingFileSink(path, 15, 1);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::string big(40, 'x');
  Deliver(**sink, Line(1), "");
  Deliver(**sink, big, "");
  Deliver(**sink, Line(2), "");
  EXPECT_EQ((*sink)->errors(), 0u);
  EXPECT_EQ(ReadFile(path + ".1"), big + "\n");
  EXPECT_EQ(ReadFile(path), Line(2) + "\n");
}

TEST(RotatingFileSinkTest, ReopensAfterTheFileIsRemovedOrRenamed) {
  TempDir tmp;
  std::string path = tmp.path() + "/events.json";
  auto sink = RotatingFileSink(path, 1000, 2);
  ASSERT_TRUE(sink.ok()) << sink.status();
  Deliver(**sink, Line(1), "");
  ASSERT_EQ(unlink(path.c_str()), 0);
  Deliver(**sink, Line(2), "");
  EXPECT_EQ(ReadFile(path), Line(2) + "\n");
  // logrotate's default: rename away, then the writer must follow the name.
  ASSERT_EQ(rename(path.c_str(), (path + ".old").c_str()), 0);
  Deliver(**sink, Line(3), "");
  EXPECT_EQ(ReadFile(path), Line(3) + "\n");
  EXPECT_EQ(ReadFile(path + ".old"), Line(2) + "\n");
  EXPECT_EQ((*sink)->errors(), 0u);
}

TEST(RotatingFileSinkTest, WholeDirectoryRemovedIsRecreated) {
  TempDir tmp;
  std::string dir = tmp.path() + "/sub";
  std::string path = dir + "/events.json";
  auto sink = RotatingFileSink(path, 1000, 2);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  Deliver(**sink, Line(1), "");
  EXPECT_EQ(ReadFile(path), Line(1) + "\n");
  EXPECT_EQ((*sink)->errors(), 0u);
}

TEST(RotatingFileSinkTest, UnwritableLocationIsAClearError) {
  TempDir tmp;
  // A regular file where a directory should be: fails even for root.
  std::string blocker = tmp.path() + "/not_a_dir";
  { std::ofstream(blocker) << "x"; }
  std::string path = blocker + "/events.json";
  auto sink = RotatingFileSink(path, 1000, 2);
  ASSERT_FALSE(sink.ok());
  EXPECT_TRUE(absl::StrContains(sink.status().message(), path))
      << sink.status();
  EXPECT_TRUE(absl::StrContains(sink.status().message(), "Not a directory"))
      << sink.status();

  if (geteuid() != 0) {  // root ignores directory permissions
    std::string ro = tmp.path() + "/ro";
    ASSERT_EQ(mkdir(ro.c_str(), 0500), 0);
    auto denied = RotatingFileSink(ro + "/events.json", 1000, 2);
    ASSERT_FALSE(denied.ok());
    EXPECT_TRUE(
        absl::StrContains(denied.status().message(), ro + "/events.json"))
        << denied.status();
  }
}

TEST(RotatingFileSinkTest, FailuresAfterStartAreCountedNotFatal) {
  TempDir tmp;
  std::string dir = tmp.path() + "/sub";
  std::string path = dir + "/events.json";
  auto sink = RotatingFileSink(path, 1000, 2);
  ASSERT_TRUE(sink.ok()) << sink.status();
  // Replace the directory by a file: neither the file nor the directory can
  // be re-created.
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  { std::ofstream(dir) << "x"; }
  Deliver(**sink, Line(1), "");
  Deliver(**sink, Line(2), "");
  EXPECT_EQ((*sink)->errors(), 2u);
  // Once the obstacle is gone, writing resumes.
  ASSERT_EQ(unlink(dir.c_str()), 0);
  Deliver(**sink, Line(3), "");
  EXPECT_EQ((*sink)->errors(), 2u);
  EXPECT_EQ(ReadFile(path), Line(3) + "\n");
}

TEST(RotatingFileSinkTest, RejectsBadArguments) {
  EXPECT_EQ(RotatingFileSink("", 10, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RotatingFileSink("/tmp/x", 0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RotatingFileSink("/tmp/x", 10, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class RecordingSink : public EventSink {
 public:
  RecordingSink(std::vector<std::string>* log, std::string name,
                uint64_t errors)
      : log_(log), name_(std::move(name)), errors_(errors) {}
  void Write(RenderedEvent& event) override {
    log_->push_back(absl::StrCat(name_, ":", event.Json(), ":", event.Text()));
  }
  uint64_t errors() const override { return errors_; }

 private:
  std::vector<std::string>* log_;
  std::string name_;
  uint64_t errors_;
};

// A syslog daemon's socket: a unix datagram socket bound at `path`.
UniqueFd BindDatagram(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd || path.size() >= sizeof(addr.sun_path)) return UniqueFd();
  path.copy(addr.sun_path, path.size());
  timeval second{1, 0};
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &second, sizeof(second)) !=
          0) {
    return UniqueFd();
  }
  return fd;
}

std::string Receive(int fd) {
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(SyslogSinkTest, SendsWhatSyslogWouldToTheSocket) {
  TempDir dir;
  const std::string log = dir.path() + "/log";
  UniqueFd daemon = BindDatagram(log);
  ASSERT_TRUE(daemon.valid());
  std::unique_ptr<EventSink> sink = SyslogSink("egress_unit", log);
  EventRecord record;
  record.raw.verdict = EGRESS_VERDICT_DENY;
  RenderedEvent event(record, "{}", "web curl[1] -> 192.0.2.1:443/tcp DENIED");
  sink->Write(event);
  const std::string got = Receive(daemon.get());
  // <LOG_DAEMON|LOG_WARNING>Mmm dd hh:mm:ss ident[pid]: message
  EXPECT_TRUE(absl::StartsWith(got, "<28>")) << got;
  EXPECT_EQ(got.substr(4 + 15),
            absl::StrCat(" egress_unit[", getpid(),
                         "]: EGRESS DENIED web curl[1] -> 192.0.2.1:443/tcp "
                         "DENIED"))
      << got;
  EXPECT_EQ(sink->errors(), 0u);
}

TEST(SyslogSinkTest, CountsWhatCannotBeSentAndReconnects) {
  TempDir dir;
  const std::string log = dir.path() + "/log";
  std::unique_ptr<EventSink> sink = SyslogSink("egress_unit", log);
  EventRecord record;
  record.raw.verdict = EGRESS_VERDICT_ALLOW;
  RenderedEvent event(record, "{}", "one");
  sink->Write(event);
  sink->Write(event);
  EXPECT_EQ(sink->errors(), 2u);  // nobody listens at `log`
  {
    UniqueFd daemon = BindDatagram(log);
    ASSERT_TRUE(daemon.valid());
    sink->Write(event);
    EXPECT_TRUE(absl::EndsWith(Receive(daemon.get()), "]: EGRESS ALLOWED one"));
    EXPECT_EQ(sink->errors(), 2u);
  }
  // The daemon restarts: a new socket at the path.
  ASSERT_EQ(unlink(log.c_str()), 0);
  UniqueFd restarted = BindDatagram(log);
  ASSERT_TRUE(restarted.valid());
  sink->Write(event);
  EXPECT_TRUE(
      absl::EndsWith(Receive(restarted.get()), "]: EGRESS ALLOWED one"));
  EXPECT_EQ(sink->errors(), 2u);
}

TEST(FanOutTest, CallsEverySinkInOrderAndSumsErrors) {
  std::vector<std::string> log;
  std::vector<std::unique_ptr<EventSink>> sinks;
  sinks.push_back(std::make_unique<RecordingSink>(&log, "a", 1));
  sinks.push_back(nullptr);
  sinks.push_back(std::make_unique<RecordingSink>(&log, "b", 2));
  std::unique_ptr<EventSink> fan = FanOut(std::move(sinks));
  Deliver(*fan, "{}", "msg");
  Deliver(*fan, "{\"x\":1}", "");
  EXPECT_EQ(log, (std::vector<std::string>{"a:{}:msg", "b:{}:msg",
                                           "a:{\"x\":1}:", "b:{\"x\":1}:"}));
  EXPECT_EQ(fan->errors(), 3u);
  EXPECT_EQ(FanOut({})->errors(), 0u);
}

TEST(FanOutTest, FileAndFileBothReceive) {
  TempDir tmp;
  std::vector<std::unique_ptr<EventSink>> sinks;
  for (const char* name : {"/a.json", "/b.json"}) {
    auto s = RotatingFileSink(tmp.path() + name, 1000, 1);
    ASSERT_TRUE(s.ok()) << s.status();
    sinks.push_back(*std::move(s));
  }
  auto fan = FanOut(std::move(sinks));
  Deliver(*fan, Line(7), "m");
  EXPECT_EQ(ReadFile(tmp.path() + "/a.json"), Line(7) + "\n");
  EXPECT_EQ(ReadFile(tmp.path() + "/b.json"), Line(7) + "\n");
}

// The syslog sink: tests/privileged/syslog_sink_test.cc (a /dev/log of its
// own in a mount namespace).

}  // namespace
}  // namespace egress
