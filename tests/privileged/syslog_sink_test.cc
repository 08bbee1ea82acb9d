// `egressd --events_syslog`: what reaches syslog. syslog(3) writes to
// /dev/log and reports no failure, so the only proof is the datagram a
// syslog daemon would receive. A child in a mount namespace of its own
// (private propagation, a tmpfs over /dev that only it sees) binds /dev/log
// itself, writes records through the real sink and reads them back; the
// host's /dev/log is never touched.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/testing/command.h"
#include "tests/testing/privileges.h"
#include "userspace/events/event_render.h"
#include "userspace/events/event_sink.h"

namespace egress::testing {
namespace {

// What a child found, as its exit code.
enum Outcome {
  kOk = 0,
  kNoNamespace = 10,
  kNoSocket,
  kNoDatagram,
  kWrongDenied,
  kWrongAudit,
  kWrongErrors,
};

// The syslog line of a record: "<priority>... ident[pid]: message".
bool Holds(const std::string& got, const std::string& message) {
  // LOG_DAEMON | LOG_WARNING = 3 * 8 + 4.
  return absl::StartsWith(got, "<28>") &&
         absl::StrContains(got, "egress_syslog_test[") &&
         absl::EndsWith(got, message);
}

// A /dev of this process's own (a private mount namespace with a tmpfs on
// /dev): what the test binds there is never the machine's /dev/log.
bool PrivateDev() {
  return unshare(CLONE_NEWNS) == 0 &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
         mount("tmpfs", "/dev", "tmpfs", 0, "size=64k") == 0;
}

// A datagram socket bound to /dev/log, as a syslog daemon's; a recv on it
// waits at most 2 s. -1 on failure.
int BindDevLog() {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strcpy(sun.sun_path, "/dev/log");
  timeval two_seconds{2, 0};
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two_seconds,
                 sizeof(two_seconds)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

int Child() {
  if (!PrivateDev()) return kNoNamespace;
  const int fd = BindDevLog();
  if (fd < 0) return kNoSocket;
  std::unique_ptr<EventSink> sink = SyslogSink("egress_syslog_test");
  char buf[2048];
  auto next = [&]() -> std::string {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };

  EventRecord denied;
  denied.raw.verdict = EGRESS_VERDICT_DENY;
  RenderedEvent d(denied, "{}",
                  "web curl[1] -> 192.0.2.1:443/tcp DENIED (no matching rule)");
  sink->Write(d);
  const std::string first = next();
  if (first.empty()) return kNoDatagram;
  if (!Holds(first,
             "EGRESS DENIED web curl[1] -> 192.0.2.1:443/tcp DENIED (no "
             "matching rule)")) {
    return kWrongDenied;
  }
  EventRecord audited;
  audited.raw.verdict = EGRESS_VERDICT_AUDIT;
  RenderedEvent a(audited, "{}", "web curl[2] -> 192.0.2.2:25/tcp AUDIT");
  sink->Write(a);
  if (!Holds(next(), "EGRESS AUDIT web curl[2] -> 192.0.2.2:25/tcp AUDIT")) {
    return kWrongAudit;
  }
  return kOk;
}

// With no /dev/log (no syslog daemon yet), records are counted as errors;
// once a socket is bound there, the sink connects and records arrive.
int ChildWithoutDevLog() {
  if (!PrivateDev()) return kNoNamespace;
  std::unique_ptr<EventSink> sink = SyslogSink("egress_syslog_test");
  EventRecord denied;
  denied.raw.verdict = EGRESS_VERDICT_DENY;
  RenderedEvent d(denied, "{}", "web curl[1] -> 192.0.2.1:443/tcp DENIED");
  for (int i = 0; i < 3; ++i) sink->Write(d);
  if (sink->errors() != 3) return kWrongErrors;

  const int fd = BindDevLog();
  if (fd < 0) return kNoSocket;
  sink->Write(d);
  char buf[2048];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) return kNoDatagram;
  if (!Holds(std::string(buf, static_cast<size_t>(n)),
             "EGRESS DENIED web curl[1] -> 192.0.2.1:443/tcp DENIED")) {
    return kWrongDenied;
  }
  return sink->errors() == 3 ? kOk : kWrongErrors;
}

// Runs `child` in a forked process; its Outcome.
int RunChild(int (*child)()) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(child());
  absl::StatusOr<int> ws = WaitPidUntil(pid, absl::Now() + absl::Seconds(20));
  if (!ws.ok()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return ExitCodeFromWaitStatus(*ws);
}

TEST(SyslogSinkTest, WithoutDevLogRecordsAreCountedUntilItAppears) {
  EGRESS_REQUIRE_ROOT();
  const int code = RunChild(ChildWithoutDevLog);
  EXPECT_NE(code, kNoNamespace) << "no mount namespace with /dev of its own";
  EXPECT_NE(code, kWrongErrors) << "records not sent were not counted";
  EXPECT_NE(code, kNoDatagram) << "the sink did not connect once /dev/log was";
  EXPECT_EQ(code, kOk);
}

TEST(SyslogSinkTest, RecordsReachDevLogAsWarningsOfTheDaemonFacility) {
  EGRESS_REQUIRE_ROOT();
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << strerror(errno);
  if (pid == 0) _exit(Child());
  absl::StatusOr<int> ws = WaitPidUntil(pid, absl::Now() + absl::Seconds(20));
  if (!ws.ok()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_TRUE(ws.ok()) << ws.status();
  const int code = ExitCodeFromWaitStatus(*ws);
  EXPECT_NE(code, kNoNamespace) << "no mount namespace with /dev of its own";
  EXPECT_NE(code, kNoSocket) << "could not bind /dev/log in it";
  EXPECT_NE(code, kNoDatagram) << "the sink sent nothing to /dev/log";
  EXPECT_NE(code, kWrongDenied) << "the denied record's line differs";
  EXPECT_NE(code, kWrongAudit) << "the audited record's line differs";
  EXPECT_EQ(code, kOk);
}

}  // namespace
}  // namespace egress::testing
