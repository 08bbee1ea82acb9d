#include "tests/testing/private_resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/command.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

// The files bind-mounted over their /etc namesakes.
constexpr std::pair<const char*, const char*> kFiles[] = {
    {"resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"},
    {"nsswitch.conf", "hosts: files dns\n"},
    {"hosts", "127.0.0.1 localhost\n::1 localhost\n"},
};

// In the helper: the namespaces, the mounts, loopback up and the counting
// socket. Exits with a distinct code when a step fails.
int EnterPrivateWorld(const std::string& dir) {
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) _exit(90);
  // Private propagation: the bind mounts below never reach the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    _exit(91);
  }
  for (const auto& [name, text] : kFiles) {
    const std::string src = absl::StrCat(dir, "/", name);
    const std::string dst = absl::StrCat("/etc/", name);
    if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      _exit(92);
    }
  }
  UniqueFd ctl(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (!ctl || ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) != 0) _exit(93);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) != 0) _exit(93);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(53);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin))) {
    _exit(94);
  }
  return fd;
}

// Everything `fd` yields until EOF or `deadline` (at most `max` bytes kept).
std::string ReadUntilEof(int fd, absl::Time deadline, size_t max) {
  std::string text;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    if (text.size() < max) text.append(buf, n);
  }
  return text;
}

// In the helper: runs argv with output into a pipe, bounded by `timeout`.
void RunProgram(const std::vector<std::string>& argv, absl::Duration timeout,
                PrivateResolverRun* run) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) _exit(95);
  const pid_t pid = fork();
  if (pid < 0) _exit(95);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  const absl::Time deadline = absl::Now() + timeout;
  run->output = ReadUntilEof(out[0], deadline, kMaxOutput);
  close(out[0]);
  absl::StatusOr<int> st = WaitPidUntil(pid, deadline);
  if (!st.ok()) {
    kill(pid, SIGKILL);
    int raw = 0;
    waitpid(pid, &raw, 0);
    st = raw;
  }
  run->exit_code = ExitCodeFromWaitStatus(*st);
}

// In the helper: datagrams queued on `fd`, after a short grace for late ones.
int CountDatagrams(int fd) {
  int count = 0;
  char buf[2048];
  pollfd p = {fd, POLLIN, 0};
  while (poll(&p, 1, 200) == 1 && count < 10000) {
    if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0) break;
    ++count;
  }
  return count;
}

[[noreturn]] void Helper(const std::string& dir,
                         const std::vector<std::string>& argv,
                         absl::Duration timeout, int report_fd) {
  const int dns = EnterPrivateWorld(dir);
  PrivateResolverRun run;
  RunProgram(argv, timeout, &run);
  run.dns_datagrams = CountDatagrams(dns);
  const int header[2] = {run.exit_code, run.dns_datagrams};
  if (write(report_fd, header, sizeof(header)) != sizeof(header)) _exit(96);
  if (write(report_fd, run.output.data(), run.output.size()) < 0) _exit(96);
  _exit(0);
}

absl::StatusOr<std::string> MakeFiles() {
  char tmpl[] = "/tmp/egress-resolver-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return ErrnoStatus(errno, "mkdtemp");
  for (const auto& [name, text] : kFiles) {
    std::ofstream(absl::StrCat(tmpl, "/", name)) << text;
  }
  return std::string(tmpl);
}

}  // namespace

absl::StatusOr<PrivateResolverRun> RunWithPrivateResolver(
    const std::vector<std::string>& argv, absl::Duration timeout) {
  absl::StatusOr<std::string> dir = MakeFiles();
  if (!dir.ok()) return dir.status();
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    Helper(*dir, argv, timeout, report[1]);
  }
  close(report[1]);
  const absl::Time deadline = absl::Now() + timeout + absl::Seconds(5);
  const std::string text = ReadUntilEof(report[0], deadline, 2 * kMaxOutput);
  close(report[0]);
  absl::StatusOr<int> st = pid > 0 ? WaitPidUntil(pid, deadline)
                                   : absl::InternalError("fork failed");
  if (!st.ok() && pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  RunCommand({"rm", "-rf", *dir}).IgnoreError();
  if (!st.ok()) return st.status();
  if (ExitCodeFromWaitStatus(*st) != 0 || text.size() < 2 * sizeof(int)) {
    return absl::InternalError(absl::StrCat(
        "private resolver helper failed with exit ",
        ExitCodeFromWaitStatus(*st), " (90 unshare .. 96 report)"));
  }
  PrivateResolverRun run;
  int header[2];
  memcpy(header, text.data(), sizeof(header));
  run.exit_code = header[0];
  run.dns_datagrams = header[1];
  run.output = text.substr(sizeof(header));
  return run;
}

}  // namespace egress::testing
