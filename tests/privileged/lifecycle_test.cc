// The life of a target: egressd killed and restarted (fail closed, state
// adopted without a gap or a second attachment), its cgroup removed and
// created again, removal as the one way to lift enforcement (and a kill
// right after it), and `egressctl run`.
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

class LifecycleTest : public EgressdTest {};

TEST_F(LifecycleTest, EnforcementSurvivesSigkillAndRestartAdoptsWithoutGap) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  ASSERT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);

  // A worker in the cgroup probes continuously across the kill and restart:
  // every single attempt must keep its verdict.
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, probes{0};
  std::thread prober([&] {
    while (!stop.load() && probes.load() < 100000) {
      auto r = RunInCgroupMulti(cg_->path(), [] {
        std::vector<int> out;
        for (int i = 0; i < 50; ++i) {
          out.push_back(TcpConnect("127.0.0.2", 40002));
          out.push_back(TcpConnect("127.0.0.2", 40001));
        }
        return out;
      });
      if (!r.ok()) break;
      for (size_t i = 0; i < r->size(); ++i) {
        bool should_allow = i % 2 == 1;
        if (Allowed((*r)[i]) != should_allow) ++wrong;
        ++probes;
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(200));
  StopDaemon(SIGKILL);
  absl::SleepFor(absl::Milliseconds(300));
  StartDaemon();
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  prober.join();
  EXPECT_GT(probes.load(), 200);
  EXPECT_EQ(wrong.load(), 0)
      << "verdicts changed while egressd was down or starting";

  // Adopted, not attached a second time; rules restored from state.
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET_SOCK_CREATE), 1);
  std::string list = CtlOk({"list"});
  EXPECT_TRUE(absl::StrContains(list, "40001/tcp")) << list;
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
}

TEST_F(LifecycleTest, SigtermLeavesEnforcementInForce) {
  AddTarget("web");
  StopDaemon(SIGTERM);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  StartDaemon();
}

TEST_F(LifecycleTest, RestartWithPinsGoneRestoresFromState) {
  // A reboot: the daemon dies and bpffs is empty; the state file remains.
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  CtlOk({"deny", "any", "127.0.0.9"});
  StopDaemon(SIGKILL);
  // Removing the pins detaches everything, as a reboot would.
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  // The kernel releases unpinned links asynchronously: wait (bounded).
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  StartDaemon();
  EXPECT_TRUE(Allowed(InCgroup([] { return TcpConnect("127.0.0.2", 40001); })));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.9", 40001); }), EPERM);
}

// The systemd notification protocol (Type=notify): READY=1 only once every
// target is restored and --policy_dir applied, so a unit ordered after
// egressd starts enforced; and STOPPING=1 on SIGTERM. The test plays
// systemd's side of NOTIFY_SOCKET and looks at the kernel at the moment
// READY=1 arrives: before anything asked egressd anything (no ping), and with
// egressd stopped (SIGSTOP) so that nothing it does after READY=1 counts.
// The start has real work to do before it may say READY=1: a reboot (no
// pins) leaves four targets to restore from the state and one to create from
// the policy directory. A READY=1 sent before that work finds them open.
TEST_F(LifecycleTest, TellsSystemdItIsReadyOnlyOnceEnforcementIsRestored) {
  std::vector<TestCgroup*> cgroups;
  for (int i = 0; i < 4; ++i) {
    auto cg = cg_->CreateChild(absl::StrCat("t", i));
    ASSERT_TRUE(cg.ok()) << cg.status();
    cgroups.push_back(*cg);
    const std::string name = absl::StrCat("t", i);
    AddTarget(name, *cg);
    CtlOk({"allow", "40001/tcp", "127.0.0.2", "--target", name});
  }
  StopDaemon(SIGKILL);
  // A reboot: nothing pinned, so the start must restore from the state.
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  for (TestCgroup* cg : cgroups) {
    EXPECT_ALLOWED(InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); },
                                 Allowed, cg));
  }
  // And a policy egressd has not seen yet, for a fifth cgroup.
  auto from_dir = cg_->CreateChild("fromdir");
  ASSERT_TRUE(from_dir.ok()) << from_dir.status();
  cgroups.push_back(*from_dir);
  const std::string policy_dir =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/policies.d";
  ASSERT_EQ(mkdir(policy_dir.c_str(), 0700), 0) << strerror(errno);
  std::ofstream(policy_dir + "/fromdir.yaml")
      << PolicyHead("fromdir", (*from_dir)->relative_path())
      << "  - to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
         "    ports: [{port: 40001, protocol: TCP}]\n";
  extra_daemon_args_ = {"--policy_dir", policy_dir};

  const std::string notify_path = state_dir_ + "/../notify.sock";
  UniqueFd notify(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(notify);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(notify_path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, notify_path.c_str(), notify_path.size());
  ASSERT_EQ(
      bind(notify.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << strerror(errno);
  // The next notification (bounded wait), or why there is none.
  auto next_message = [&notify]() -> std::string {
    pollfd p{notify.get(), POLLIN, 0};
    if (poll(&p, 1, 20000) != 1) return "(nothing within 20 s)";
    char buf[512];
    ssize_t n = recv(notify.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(recv failed)";
  };
  setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
  LaunchDaemon();
  unsetenv("NOTIFY_SOCKET");
  ASSERT_GT(daemon_pid_, 0);
  const std::string ready = next_message();
  // Freeze egressd where READY=1 left it; thaw it whatever happens below.
  ASSERT_EQ(kill(daemon_pid_, SIGSTOP), 0) << strerror(errno);
  {
    const pid_t stopped = daemon_pid_;
    absl::Cleanup thaw = [stopped] { kill(stopped, SIGCONT); };
    ASSERT_TRUE(absl::StrContains(ready, "READY=1")) << ready;
    // What a unit started on READY=1 finds: every policy in force.
    for (TestCgroup* cg : cgroups) {
      SCOPED_TRACE(cg->relative_path());
      EXPECT_EQ(AttachedPrograms(cg->path(), BPF_CGROUP_INET4_CONNECT), 1);
      EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }, cg),
                EPERM);
      EXPECT_ALLOWED(
          InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, cg));
    }
  }
  WaitForDaemon();
  nlohmann::json targets = CtlJson({"target", "list"})["targets"];
  EXPECT_EQ(targets.size(), cgroups.size()) << targets.dump();
  for (const auto& t : targets) {
    EXPECT_EQ(t["attached"], true) << t.dump();
  }

  StopDaemon(SIGTERM);
  const std::string stopping = next_message();
  EXPECT_TRUE(absl::StrContains(stopping, "STOPPING=1")) << stopping;
  unlink(notify_path.c_str());
  extra_daemon_args_.clear();
  StartDaemon();
}

TEST_F(LifecycleTest, CorruptStateDatabaseIsReportedNotDropped) {
  AddTarget("web");
  StopDaemon(SIGKILL);
  {
    // The write-ahead log goes too: what is left is the damaged file.
    unlink((state_dir_ + "/state.db-wal").c_str());
    unlink((state_dir_ + "/state.db-shm").c_str());
    FILE* f = fopen((state_dir_ + "/state.db").c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(std::string(8192, 'x').c_str(), f);
    fclose(f);
  }
  auto r =
      RunCommand({EGRESS_EGRESSD_PATH, "--socket", socket_path_, "--bpffs",
                  bpffs_dir_, "--state_dir", state_dir_, "--metrics_addr", ""},
                 absl::Seconds(20));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r->output, "state.db is corrupt")) << r->output;
  // Enforcement from the pins stays in force meanwhile.
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  // Clean up the pinned target by hand (the state is unusable).
  ASSERT_EQ(RunCommand({"rm", "-rf", bpffs_dir_})->exit_code, 0);
  ASSERT_EQ(
      RunCommand({"rm", "-f", state_dir_ + "/state.db",
                  state_dir_ + "/state.db-wal", state_dir_ + "/state.db-shm"})
          ->exit_code,
      0);
  StartDaemon();
}

TEST_F(LifecycleTest, RecreatedCgroupIsEnforcedAgain) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  std::string path = cg_->path();
  ASSERT_EQ(rmdir(path.c_str()), 0) << strerror(errno);
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << strerror(errno);
  // egressd watches the parent directory: the new cgroup gets the programs
  // within one poll iteration. Wait for it, bounded.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline &&
         AttachedPrograms(path, BPF_CGROUP_INET4_CONNECT) < 1) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(AttachedPrograms(path, BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  EXPECT_TRUE(Allowed(InCgroup([] { return TcpConnect("127.0.0.2", 40001); })));
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_EQ(targets["targets"][0]["attached"], true);
}

TEST_F(LifecycleTest, TargetForMissingCgroupWaitsForIt) {
  std::string rel = cg_->relative_path() + "/later";
  std::string out = CtlOk({"target", "add", "later", "--cgroup", rel});
  EXPECT_TRUE(absl::StrContains(out, "does not exist yet")) << out;
  auto child = cg_->CreateChild("later");
  ASSERT_TRUE(child.ok());
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline &&
         AttachedPrograms((*child)->path(), BPF_CGROUP_INET4_CONNECT) < 1) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *child),
            EPERM);
}

TEST_F(LifecycleTest, TargetByPidUsesTheProcessCgroup) {
  // A process in the test cgroup names it: `target add --pid`.
  pid_t pid = StartSleeperInCgroup();
  ASSERT_GT(pid, 0);
  std::string out =
      CtlOk({"target", "add", "bypid", "--pid", std::to_string(pid)});
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(absl::StrContains(out, cg_->relative_path())) << out;
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  CommandResult bad = Ctl({"target", "add", "nopid", "--pid", "999999999"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(absl::StrContains(bad.output, "999999999")) << bad.output;
}

TEST_F(LifecycleTest, TargetRemoveLiftsEnforcement) {
  AddTarget("web");
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }), EPERM);
  CtlOk({"target", "remove", "web"});
  EXPECT_TRUE(Allowed(InCgroup([] { return TcpConnect("127.0.0.2", 40001); })));
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET_EGRESS), 0);
}

// A removal deletes the target's rule rows after it answers: egressd killed
// right after it (the delete cut short or not) starts without the target and
// without its rules, also under a target of the same name added again.
TEST_F(LifecycleTest, ARemovedTargetStaysRemovedAcrossAKill) {
  const std::string path =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/big.yaml";
  {
    // Rows enough for more than one chunk of the delete (5,000).
    std::ofstream f(path);
    f << PolicyHead("web", cg_->relative_path());
    for (int i = 0; i < 12000; ++i) {
      f << "  - to:\n    - ipBlock: {cidr: 127.1." << i / 200 << "."
        << i % 200 + 1 << "/32}\n    ports:\n    - {port: " << 1000 + i
        << ", protocol: TCP}\n";
    }
  }
  CtlOk({"apply", "-f", path});
  CtlOk({"target", "remove", "web"});
  StopDaemon(SIGKILL);
  StartDaemon();
  EXPECT_TRUE(CtlJson({"target", "list"})["targets"].empty())
      << CtlOk({"target", "list"});
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);

  // Again, and a target of that name added at once with a rule of its own.
  CtlOk({"apply", "-f", path});
  CtlOk({"target", "remove", "web"});
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGKILL);
  StartDaemon();
  const std::string list = CtlOk({"list"});
  EXPECT_TRUE(absl::StrContains(list, "40001/tcp")) << list;
  EXPECT_FALSE(absl::StrContains(list, "1000/tcp")) << list;
  // 127.1.0.1:1000 was the removed target's first rule.
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.1.0.1", 1000); }), EPERM);
  StopDaemon(SIGKILL);
  StartDaemon();
  EXPECT_EQ(CtlOk({"list"}), list);
}

TEST_F(LifecycleTest, PinsArePrivate) {
  AddTarget("web");
  struct stat st;
  std::string v1 = absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION);
  ASSERT_EQ(stat(bpffs_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((v1 + "/maps/rules").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  ASSERT_EQ(stat((v1 + "/targets/1/link_connect4").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  ASSERT_EQ(stat(socket_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LifecycleTest, RunStartsCommandUnderItsOwnPolicy) {
  // The command probes two destinations and reports through its exit code:
  // 0 when the allowed one is reachable and the other is refused.
  const std::string script =
      "import socket,errno,sys\n"
      "def t(a,p):\n"
      "  s=socket.socket(); s.settimeout(2)\n"
      "  try: s.connect((a,p)); return 0\n"
      "  except OSError as e: return e.errno\n"
      "ok = t('127.0.0.2',40001) == errno.ECONNREFUSED\n"
      "denied = t('127.0.0.2',40002) == errno.EPERM\n"
      "sys.exit(0 if ok and denied else 3)\n";
  CommandResult r =
      Ctl({"run", "--allow", "40001/tcp 127.0.0.2", "--target-name", "runtest",
           "--", "python3", "-c", script});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // The exit code of the command is returned, and the target is gone.
  r = Ctl({"run", "--", "sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.output;
  nlohmann::json targets = CtlJson({"target", "list"});
  EXPECT_TRUE(targets["targets"].empty()) << targets.dump();
}

TEST_F(LifecycleTest, UpgradeRetiresThePinsOfAnOlderAbi) {
  AddTarget("web");
  StopDaemon(SIGTERM);
  // What an older egressd left: a program set attached with a pinned link
  // under v1/ (simulated with today's shared program).
  std::string cur = absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION);
  std::string old = bpffs_dir_ + "/v1/targets/1";
  ASSERT_TRUE(MakeDirs(old, 0700).ok());
  {
    UniqueFd prog(bpf_obj_get((cur + "/shared/prog_connect4").c_str()));
    ASSERT_TRUE(prog.valid());
    UniqueFd cg(open(cg_->path().c_str(), O_RDONLY | O_DIRECTORY));
    UniqueFd link(bpf_link_create(prog.get(), cg.get(),
                                  BPF_CGROUP_INET4_CONNECT, nullptr));
    ASSERT_TRUE(link.valid()) << strerror(errno);
    ASSERT_EQ(bpf_obj_pin(link.get(), (old + "/link_connect4").c_str()), 0);
  }
  ASSERT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 2);
  StartDaemon();
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  struct stat st;
  EXPECT_NE(stat((bpffs_dir_ + "/v1").c_str(), &st), 0);
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  auto log = RunCommand({"cat", daemon_log_});
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(absl::StrContains(log->output, "removed the pins of ABI v1"))
      << log->output;
}

}  // namespace
}  // namespace egress::testing
