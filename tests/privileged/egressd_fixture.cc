#include "tests/privileged/egressd_fixture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/privileges.h"
#include "tests/testing/run_in_cgroup.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/control/control_socket.h"

namespace egress::testing {

int AttachedPrograms(const std::string& cgroup_path, int attach_type) {
  UniqueFd fd(open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY));
  if (!fd) return -1;
  uint32_t ids[64], count = 64, flags = 0;
  if (bpf_prog_query(fd.get(), static_cast<bpf_attach_type>(attach_type), 0,
                     &flags, ids, &count) != 0) {
    return -1;
  }
  return static_cast<int>(count);
}

pid_t StartChrootedSleeper(const std::string& cgroup, const std::string& root,
                           const std::vector<std::string>& sockets) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(ready[0]);
    std::vector<int> held;
    for (const std::string& s : sockets) {
      const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", s.c_str());
      if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
        _exit(1);
      held.push_back(fd);
    }
    FILE* f = fopen((cgroup + "/cgroup.procs").c_str(), "w");
    if (f == nullptr) _exit(1);
    fprintf(f, "%d", getpid());
    fclose(f);
    if (chroot(root.c_str()) != 0 || chdir("/") != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    sleep(60);
    _exit(0);
  }
  close(ready[1]);
  char c;
  const bool in = pid > 0 && read(ready[0], &c, 1) == 1;
  close(ready[0]);
  if (!in && pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

void EgressdTest::SetUp() {
  EGRESS_REQUIRE_ROOT();
  char tmpl[] = "/tmp/egress-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  state_dir_ = absl::StrCat(tmpl, "/state");
  socket_path_ = absl::StrCat(tmpl, "/egressd.sock");
  daemon_log_ = absl::StrCat(tmpl, "/egressd.log");
  bpffs_dir_ =
      absl::StrCat("/sys/fs/bpf/egress-test-", getpid(), "-",
                   std::string(tmpl).substr(sizeof("/tmp/egress-test-") - 1));
  auto cg = TestCgroup::Create("priv");
  ASSERT_TRUE(cg.ok()) << cg.status();
  cg_ = *std::move(cg);
  StartDaemon();
}

void EgressdTest::StartDaemon() {
  LaunchDaemon();
  if (daemon_pid_ > 0) WaitForDaemon();
}

void EgressdTest::LaunchDaemon() {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(daemon_log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<std::string> args = {
        "egressd", "--socket", socket_path_, "--bpffs", bpffs_dir_,
        "--state_dir", state_dir_, "--metrics_addr", "127.0.0.1:0",
        // A self-check probe is a real denied connect: tests that count
        // decisions exactly turn it on themselves (self_check_test.cc).
        "--self_check_interval_ms", "0"};
    args.insert(args.end(), extra_daemon_args_.begin(),
                extra_daemon_args_.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(EGRESS_EGRESSD_PATH, argv.data());
    _exit(127);
  }
  daemon_pid_ = pid;
}

void EgressdTest::WaitForDaemon() {
  const pid_t pid = daemon_pid_;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto r = CallDaemon(socket_path_, {{"cmd", "ping"}}, absl::Seconds(2));
    if (r.ok() && ResponseStatus(*r).ok()) return;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      daemon_pid_ = -1;
      auto log = RunCommand({"cat", daemon_log_});
      FAIL() << "egressd exited at start: " << (log.ok() ? log->output : "");
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  FAIL() << "egressd did not answer within 20 s";
}

void EgressdTest::StopDaemon(int sig) {
  if (daemon_pid_ <= 0) return;
  kill(daemon_pid_, sig);
  int status;
  waitpid(daemon_pid_, &status, 0);
  daemon_pid_ = -1;
}

void EgressdTest::TearDown() {
  if (state_dir_.empty()) return;  // skipped before anything was made
  // Lift enforcement the supported way while the daemon runs, then make sure
  // by removing every pin (unpinned links detach).
  if (daemon_pid_ > 0) {
    auto list =
        CallDaemon(socket_path_, {{"cmd", "target_list"}}, absl::Seconds(10));
    if (list.ok() && list->contains("targets")) {
      for (const auto& t : (*list)["targets"]) {
        CallDaemon(socket_path_,
                   {{"cmd", "target_remove"}, {"name", t["name"]}},
                   absl::Seconds(10))
            .IgnoreError();
      }
    }
  }
  StopDaemon(SIGKILL);
  EXPECT_TRUE(RemoveTree(bpffs_dir_).ok());
  if (::testing::Test::HasFailure()) {
    // egressd's own lines, not drowned by a flood of verdict records (one
    // JSON object per line with an "event" field).
    auto own = RunCommand({"sh", "-c",
                           absl::StrCat("grep -v '^{.*\"event\":' ",
                                        daemon_log_, " | tail -n 60")});
    if (own.ok()) std::cerr << "egressd log:\n" << own->output << "\n";
    auto records = RunCommand({"tail", "-n", "5", daemon_log_});
    if (records.ok()) {
      std::cerr << "its last lines:\n" << records->output << "\n";
    }
  }
  if (cg_) {
    EXPECT_TRUE(cg_->Remove().ok());
  }
  std::string dir = state_dir_.substr(0, state_dir_.rfind('/'));
  RunCommand({"rm", "-rf", dir}).IgnoreError();
}

CommandResult EgressdTest::Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {EGRESS_EGRESSCTL_PATH, "--socket",
                                   socket_path_};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, absl::Seconds(60));
  if (!r.ok()) {
    ADD_FAILURE() << "egressctl could not run: " << r.status();
    return CommandResult{};
  }
  return *r;
}

std::string EgressdTest::CtlOk(const std::vector<std::string>& args) {
  CommandResult r = Ctl(args);
  std::string joined;
  for (const auto& a : args) absl::StrAppend(&joined, " ", a);
  EXPECT_EQ(r.exit_code, 0) << "egressctl" << joined << ":\n" << r.output;
  return r.output;
}

nlohmann::json EgressdTest::CtlJson(const std::vector<std::string>& args) {
  std::vector<std::string> a = args;
  a.push_back("-o");
  a.push_back("json");
  CommandResult r = Ctl(a);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.output;
  return j;
}

std::vector<nlohmann::json> EgressdTest::Records(
    const std::vector<std::string>& filter, size_t at_least) {
  std::vector<nlohmann::json> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    std::vector<std::string> args = {"events", "--last", "10000", "-o", "json"};
    args.insert(args.end(), filter.begin(), filter.end());
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    out.clear();
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      out.push_back(j);
    }
    if (out.size() >= at_least) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  return out;
}

void EgressdTest::AddTarget(const std::string& name, const TestCgroup* cg,
                            const std::string& mode) {
  if (cg == nullptr) cg = cg_.get();
  CtlOk(
      {"target", "add", name, "--cgroup", cg->relative_path(), "--mode", mode});
}

int EgressdTest::InCgroup(std::function<int()> fn, const TestCgroup* cg) {
  if (cg == nullptr) cg = cg_.get();
  auto r = RunInCgroup(cg->path(), std::move(fn));
  if (!r.ok()) {
    ADD_FAILURE() << "child in cgroup failed: " << r.status();
    return -1;
  }
  return *r;
}

int EgressdTest::InCgroupUntil(std::function<int()> fn,
                               std::function<bool(int)> done,
                               const TestCgroup* cg, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  int rc = InCgroup(fn, cg);
  while (!done(rc) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    rc = InCgroup(fn, cg);
  }
  return rc;
}

pid_t EgressdTest::StartSleeperInCgroup(const TestCgroup* cg) {
  if (cg == nullptr) cg = cg_.get();
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = fopen((cg->path() + "/cgroup.procs").c_str(), "w");
    if (f == nullptr) _exit(1);
    fprintf(f, "%d", getpid());
    fclose(f);
    close(ready[0]);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    sleep(20);
    _exit(0);
  }
  close(ready[1]);
  char c;
  bool in = pid > 0 && read(ready[0], &c, 1) == 1;
  close(ready[0]);
  if (!in) {
    ADD_FAILURE() << "could not start a process in " << cg->path();
    return -1;
  }
  return pid;
}

std::string EgressdTest::ScrapeMetrics() {
  // Not CtlJson: `status` exits 1 while a target is degraded.
  nlohmann::json status = nlohmann::json::parse(
      Ctl({"status", "-o", "json"}).output, nullptr, false);
  if (status.is_discarded() || !status.contains("metrics_port")) return "";
  int port = status["metrics_port"].get<int>();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string body;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    send(fd, req.data(), req.size(), 0);
    char buf[65536];
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, 3000) == 1) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      body.append(buf, n);
    }
  }
  close(fd);
  return body;
}

std::string EgressdTest::DaemonLog() {
  auto log = RunCommand({"cat", daemon_log_});
  return log.ok() ? log->output : "";
}

nlohmann::json EgressdTest::TargetStatus(const std::string& target) {
  nlohmann::json status = CtlJson({"status"});
  for (const auto& t : status["targets"]) {
    if (t["name"] == target) return t;
  }
  ADD_FAILURE() << "no target " << target << " in status: " << status.dump(2);
  return {};
}

nlohmann::json EgressdTest::Counters(const std::string& target) {
  const nlohmann::json t = TargetStatus(target);
  return t.is_null() ? t : t["counters"];
}

uint32_t EgressdTest::TargetId(const std::string& target) {
  const nlohmann::json t = TargetStatus(target);
  return t.is_null() ? 0 : t["id"].get<uint32_t>();
}

void EgressdTest::AwaitFlowsClosed(const std::string& target, uint64_t closed) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Counters(target)["flows_closed"].get<uint64_t>() < closed &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Counters(target)["flows_closed"].get<uint64_t>(), closed);
}

UniqueFd EgressdTest::OwnProgram(const std::string& target,
                                 const std::string& hook) {
  const uint32_t id = TargetId(target);
  if (id == 0) return UniqueFd();
  const std::string pin = absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION,
                                       "/targets/", id, "/prog_", hook);
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  EXPECT_TRUE(fd.valid()) << pin << ": " << strerror(errno);
  return fd;
}

uint32_t EgressdTest::ActiveRuleset(uint32_t id) {
  UniqueFd fd(bpf_obj_get(
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/targets")
          .c_str()));
  EXPECT_TRUE(fd.valid());
  egress_target_config cfg{};
  EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &id, &cfg), 0);
  return cfg.ruleset;
}

std::vector<std::pair<egress_exact_key, egress_rule_value>>
EgressdTest::ExactRulesEntries() {
  UniqueFd fd(bpf_obj_get(
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/maps/exact_rules")
          .c_str()));
  EXPECT_TRUE(fd.valid());
  std::vector<std::pair<egress_exact_key, egress_rule_value>> out;
  egress_exact_key key{}, next{};
  const void* prev = nullptr;
  for (int i = 0;
       i < 100000 && bpf_map_get_next_key(fd.get(), prev, &next) == 0; ++i) {
    egress_rule_value value{};
    if (bpf_map_lookup_elem(fd.get(), &next, &value) == 0) {
      out.emplace_back(next, value);
    }
    key = next;
    prev = &key;
  }
  return out;
}

}  // namespace egress::testing
