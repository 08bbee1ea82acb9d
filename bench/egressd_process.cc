#include "bench/egressd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/testing/command.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"

namespace egress::bench {

Memory MemoryOf(pid_t pid) {
  Memory m;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    double* into = absl::StartsWith(line, "VmRSS:")   ? &m.rss
                   : absl::StartsWith(line, "VmHWM:") ? &m.peak
                                                      : nullptr;
    if (into == nullptr) continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kib)) *into = kib / 1024.0;
  }
  return m;
}

Memory EgressdProcess::SettledMemory() const {
  Memory last = memory();
  for (int i = 0; i < 30; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    Memory now = memory();
    if (std::abs(now.rss - last.rss) < 0.1) return now;
    last = now;
  }
  return last;
}

const char* EgressdPath() {
  const char* p = getenv("EGRESS_BENCH_EGRESSD");
  return p != nullptr && *p != '\0' ? p : EGRESS_EGRESSD_PATH;
}

const char* EgressctlPath() {
  const char* p = getenv("EGRESS_BENCH_EGRESSCTL");
  return p != nullptr && *p != '\0' ? p : EGRESS_EGRESSCTL_PATH;
}

EgressdProcess::EgressdProcess(std::string dir, std::string bpffs,
                               std::vector<std::string> extra_args)
    : dir_(std::move(dir)),
      bpffs_(std::move(bpffs)),
      extra_args_(std::move(extra_args)) {}

EgressdProcess::~EgressdProcess() {
  Kill();
  (void)RemoveTree(bpffs_);
}

absl::Status EgressdProcess::Start() {
  fflush(stdout);  // or the child's freopen writes our buffer out again
  started_ = absl::Now();
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    FILE* log = freopen(log_path().c_str(), "a", stdout);
    if (log != nullptr) dup2(fileno(log), 2);
    std::vector<std::string> args = {
        "egressd",     "--socket",      socket(),         "--bpffs",    bpffs_,
        "--state_dir", dir_ + "/state", "--metrics_addr", "127.0.0.1:0"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(EgressdPath(), argv.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    auto r = CallDaemon(socket(), {{"cmd", "ping"}}, absl::Seconds(2));
    if (r.ok() && ResponseStatus(*r).ok()) return absl::OkStatus();
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("egressd exited at start; see ", log_path()));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError("egressd did not answer within 120 s");
}

void EgressdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

absl::StatusOr<std::string> EgressdProcess::Ctl(
    const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {EgressctlPath(), "--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCommandOk(argv, timeout);
}

int EgressdProcess::AttachedTargets() {
  auto out = Ctl({"target", "list", "-o", "json"}, absl::Seconds(30));
  if (!out.ok()) return -1;
  nlohmann::json j = nlohmann::json::parse(*out, nullptr, false);
  if (!j.is_object() || !j.contains("targets")) return -1;
  int n = 0;
  for (const auto& t : j["targets"]) {
    if (t.value("hooks_total", 0) > 0 &&
        t.value("hooks_attached", 0) == t.value("hooks_total", 0)) {
      ++n;
    }
  }
  return n;
}

absl::StatusOr<std::string> EgressdProcess::Metrics() {
  auto out = Ctl({"status", "-o", "json"}, absl::Seconds(30));
  if (!out.ok()) return out.status();
  nlohmann::json j = nlohmann::json::parse(*out, nullptr, false);
  if (!j.is_object() || !j.value("metrics_port", 0)) {
    return absl::FailedPreconditionError("status names no metrics_port");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(j["metrics_port"].get<uint16_t>());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a))) {
    return absl::UnavailableError("cannot connect to egressd's /metrics");
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) < 0) {
    return absl::UnavailableError("cannot send to egressd's /metrics");
  }
  std::string body;
  char buf[65536];
  pollfd p{fd.get(), POLLIN, 0};
  // Bounded: a scrape of an idle egressd is a few KiB.
  for (int i = 0; i < 10000 && poll(&p, 1, 3000) == 1; ++i) {
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    body.append(buf, n);
  }
  return body;
}

absl::StatusOr<absl::Duration> EgressdProcess::AwaitStartWorkDone(
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < 100000 && absl::Now() < deadline; ++i) {
    absl::StatusOr<std::string> m = Metrics();
    if (m.ok()) {
      if (absl::StrContains(*m, "\negress_shared_program_set_loaded 1\n") ||
          (absl::StrContains(*m, "\negress_build_info") &&
           !absl::StrContains(*m, "egress_shared_program_set_loaded"))) {
        return absl::Now() - started_;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("egressd's /metrics never said "
                   "egress_shared_program_set_loaded 1; see ",
                   log_path()));
}

}  // namespace egress::bench
