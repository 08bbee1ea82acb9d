// Enforced from the first instruction: a target's cgroup that is removed and
// made again (`systemctl restart`) is enforced for the first process systemd
// starts in it with clone3(CLONE_INTO_CGROUP), before egressd attaches the
// target's own programs and while egressd is down, by the watch instance at
// its parent (bpf/lib/config.h). Siblings no target names are left alone.
// Workload parents (containers): an unclassified child gets the parent's
// default until egressd classifies it (Engine::ClassifyWorkloadCgroup).
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/clone_into_cgroup.h"
#include "tests/testing/poll.h"
#include "tests/testing/privileges.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"
#include "userspace/common/instance_lock.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/kernel_port_bpf.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/event_reader.h"

namespace egress::testing {
namespace {

constexpr int kRecreations = 20;

// A UDP socket on 127.0.0.1 that counts what reaches it.
class UdpReceiver {
 public:
  UdpReceiver() {
    fd_ = UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
    sockaddr_in a = MakeSockaddrIn("127.0.0.1", 0);
    if (!fd_ || bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a))) {
      return;
    }
    socklen_t len = sizeof(a);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  uint16_t port() const { return port_; }
  // Datagrams received since the last call (loopback delivers at once).
  int Drain() {
    int n = 0;
    char buf[64];
    while (n < 100000 && recv(fd_.get(), buf, sizeof(buf), 0) >= 0) ++n;
    return n;
  }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

// Removes and makes again the (empty) cgroup at `path`.
void Recreate(const std::string& path) {
  ASSERT_EQ(rmdir(path.c_str()), 0) << path << ": " << strerror(errno);
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << path << ": " << strerror(errno);
}

class FirstInstructionTest : public EgressdTest {
 protected:
  // A path target "svc" on <test cgroup>/svc, attached, with no rules
  // (every destination denied).
  void AddServiceTarget() {
    auto svc = cg_->CreateChild("svc");
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = *svc;
    CtlOk({"target", "add", "svc", "--cgroup", svc_->relative_path()});
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline &&
           AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG) < 1) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_EQ(AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
    // The watch instance at the parent, once.
    ASSERT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
  }

  // Re-creates svc kRecreations times; each time the first process cloned
  // into it sends one datagram to the receiver as its first act. Returns
  // the errno of each send; `between` runs before each re-creation.
  std::vector<int> SendAfterEachRecreation(const UdpReceiver& rx,
                                           std::function<void()> between) {
    std::vector<int> results;
    const uint16_t port = rx.port();
    for (int i = 0; i < kRecreations; ++i) {
      if (between) between();
      Recreate(svc_->path());
      auto r = RunClonedIntoCgroup(
          svc_->path(), [port] { return UdpSendto("127.0.0.1", port); });
      results.push_back(r.ok() ? *r : -1);
    }
    return results;
  }

  TestCgroup* svc_ = nullptr;
};

TEST_F(FirstInstructionTest, RecreatedCgroupIsEnforcedFromItsFirstProcess) {
  AddServiceTarget();
  UdpReceiver rx;
  ASSERT_NE(rx.port(), 0);
  std::vector<int> results = SendAfterEachRecreation(rx, nullptr);
  EXPECT_EQ(rx.Drain(), 0) << "datagrams got out of a re-created cgroup";
  EXPECT_EQ(std::count(results.begin(), results.end(), EPERM), kRecreations)
      << ::testing::PrintToString(results);
  // egressd still attaches its own programs to the last one.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline &&
         AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG) < 1) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
  // Covered by its own programs now; still denied (once: the watch
  // instance lets a covered cgroup be).
  EXPECT_EQ(InCgroup([&rx] { return UdpSendto("127.0.0.1", rx.port()); }, svc_),
            EPERM);
}

TEST_F(FirstInstructionTest, RecreatedCgroupIsEnforcedWhileEgressdIsDown) {
  AddServiceTarget();
  UdpReceiver rx;
  ASSERT_NE(rx.port(), 0);
  // egressd killed before each re-creation (started again in between, so
  // each kill finds a fresh daemon that may have attached in the meantime).
  int round = 0;
  std::vector<int> results = SendAfterEachRecreation(rx, [&] {
    if (round++ > 0) StartDaemon();
    StopDaemon(SIGKILL);
  });
  EXPECT_EQ(rx.Drain(), 0) << "datagrams got out while egressd was down";
  EXPECT_EQ(std::count(results.begin(), results.end(), EPERM), kRecreations)
      << ::testing::PrintToString(results);
  // Restarted, egressd adopts the watch instance (no second attach).
  StartDaemon();
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline &&
         AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG) < 1) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(AttachedPrograms(svc_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
}

// The watch instance's pins removed while egressd runs (a pin directory
// removed, bpffs unmounted): egressd's held links keep it attached, and it
// pins them again, so the parent keeps its links once egressd stops.
TEST_F(FirstInstructionTest, RemovedWatchPinsAreMadeAgain) {
  AddServiceTarget();
  const std::string watch =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/watch");
  const std::string dir = absl::StrCat(watch, "/", cg_->id());
  struct stat st;
  ASSERT_EQ(stat((dir + "/link_sendmsg4").c_str(), &st), 0) << dir;
  // Moved away in one step, then removed: removing the pins one by one
  // races egressd's repair.
  const std::string gone = bpffs_dir_ + "-watch-gone";
  ASSERT_EQ(rename(watch.c_str(), gone.c_str()), 0) << strerror(errno);
  absl::Status removed = RemoveTree(gone);
  if (!removed.ok()) (void)RemoveTree(gone);
  ASSERT_TRUE(removed.ok()) << removed;
  auto repinned = [&] {
    return stat((dir + "/link_sendmsg4").c_str(), &st) == 0 &&
           stat((dir + "/link_connect4").c_str(), &st) == 0 &&
           stat((dir + "/prog_connect4").c_str(), &st) == 0;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!repinned() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(repinned()) << "egressd did not pin the watch instance again";
  EXPECT_NE(DaemonLog().find("pin(s) had gone"), std::string::npos);
  // Stopped, egressd leaves the parent its links: a re-created target
  // cgroup is denied from its first process.
  StopDaemon(SIGTERM);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_UDP4_SENDMSG), 1);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  UdpReceiver rx;
  ASSERT_NE(rx.port(), 0);
  const uint16_t port = rx.port();
  Recreate(svc_->path());
  EXPECT_EQ(RunClonedIntoCgroup(svc_->path(),
                                [port] { return UdpSendto("127.0.0.1", port); })
                .value_or(-1),
            EPERM);
  EXPECT_EQ(RunClonedIntoCgroup(svc_->path(),
                                [] { return TcpConnect("127.0.0.2", 1); })
                .value_or(-1),
            EPERM);
  EXPECT_EQ(rx.Drain(), 0) << "a datagram got out while egressd was down";
}

// A target whose parent is itself removed (a job runner's directory): the
// watch instance of the gone parent is removed, whether the parent went
// while egressd ran or while it was down, and the parent made again gets
// its own.
class RecreatedParentTest : public FirstInstructionTest {
 protected:
  void SetUp() override {
    FirstInstructionTest::SetUp();
    if (cg_ == nullptr) return;
    jobs_ = cg_->path() + "/jobs";
    worker_ = jobs_ + "/worker";
    ASSERT_EQ(mkdir(jobs_.c_str(), 0755), 0) << strerror(errno);
    ASSERT_EQ(mkdir(worker_.c_str(), 0755), 0) << strerror(errno);
  }
  std::string WatchDir(uint64_t parent_id) const {
    return absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/watch/",
                        parent_id);
  }
  uint64_t JobsId() const { return CgroupId(jobs_).value_or(0); }
  // Waits (bounded, 10 s, asking every 10 ms) until `done`.
  static bool Await(const std::function<bool()>& done) {
    return PollUntil(done, absl::Seconds(10), absl::Milliseconds(10));
  }
  static bool Exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }
  void RemoveJobs() {
    ASSERT_EQ(rmdir(worker_.c_str()), 0) << strerror(errno);
    ASSERT_EQ(rmdir(jobs_.c_str()), 0) << strerror(errno);
  }
  void MakeJobs() {
    ASSERT_EQ(mkdir(jobs_.c_str(), 0755), 0) << strerror(errno);
    ASSERT_EQ(mkdir(worker_.c_str(), 0755), 0) << strerror(errno);
  }
  // The target "worker" on <test cgroup>/jobs/worker, no rules, watched at
  // jobs.
  void AddWorker() {
    CtlOk({"target", "add", "worker", "--cgroup",
           cg_->relative_path() + "/jobs/worker"});
    const uint64_t jobs = JobsId();
    ASSERT_TRUE(Await([&] {
      return AttachedPrograms(jobs_, BPF_CGROUP_UDP4_SENDMSG) == 1 &&
             Exists(WatchDir(jobs) + "/link_sendmsg4");
    })) << "no watch instance at jobs";
  }

  std::string jobs_, worker_;
};

TEST_F(RecreatedParentTest, TheWatchOfAParentRemovedWhileEgressdRunsGoes) {
  AddWorker();
  const std::string old_dir = WatchDir(JobsId());
  RemoveJobs();
  EXPECT_TRUE(Await([&] { return !Exists(old_dir); }))
      << "the watch instance of the removed parent stayed pinned";
  EXPECT_NE(DaemonLog().find("watch instance of the removed cgroup"),
            std::string::npos);
  // Made again: watched there, and a worker made in it is denied.
  MakeJobs();
  const uint64_t jobs = JobsId();
  EXPECT_TRUE(Await([&] { return Exists(WatchDir(jobs) + "/link_sendmsg4"); }));
  EXPECT_EQ(
      RunClonedIntoCgroup(worker_, [] { return TcpConnect("127.0.0.2", 1); })
          .value_or(-1),
      EPERM);
}

TEST_F(RecreatedParentTest, TheWatchOfAParentRemovedWhileEgressdWasDownGoes) {
  AddWorker();
  const std::string old_dir = WatchDir(JobsId());
  StopDaemon(SIGTERM);
  RemoveJobs();
  MakeJobs();
  StartDaemon();
  const uint64_t jobs = JobsId();
  EXPECT_TRUE(Await([&] {
    return !Exists(old_dir) && Exists(WatchDir(jobs) + "/link_sendmsg4");
  })) << "old watch pinned: "
      << Exists(old_dir);
  EXPECT_EQ(AttachedPrograms(jobs_, BPF_CGROUP_UDP4_SENDMSG), 1);
  // Gone with every target too.
  CtlOk({"target", "remove", "worker"});
  EXPECT_FALSE(Exists(WatchDir(jobs)));
  EXPECT_EQ(AttachedPrograms(jobs_, BPF_CGROUP_UDP4_SENDMSG), 0);
}

// While egressd runs, a parent made again gets its watch instance as soon
// as egressd sees it (its own parent is watched too), and a directory made
// again is watched again. egressd rescans once an hour here, so only the
// inotify events can bring the watch within the 10 s each step waits.
TEST_F(RecreatedParentTest, AParentMadeAgainIsWatchedWithoutWaitingForARescan) {
  StopDaemon(SIGTERM);
  extra_daemon_args_.push_back("--rescan_interval_ms=3600000");
  StartDaemon();
  AddWorker();
  for (int i = 0; i < 5; ++i) {
    const std::string old_dir = WatchDir(JobsId());
    RemoveJobs();
    ASSERT_TRUE(Await([&] { return !Exists(old_dir); }))
        << "round " << i << ": the gone parent's watch instance stayed";
    ASSERT_EQ(mkdir(jobs_.c_str(), 0755), 0) << strerror(errno);
    ASSERT_TRUE(Await([&] {
      return AttachedPrograms(jobs_, BPF_CGROUP_UDP4_SENDMSG) == 1;
    })) << "round "
        << i << ": the re-created parent is not watched";
    ASSERT_EQ(mkdir(worker_.c_str(), 0755), 0) << strerror(errno);
  }
}

TEST_F(FirstInstructionTest, SiblingNoTargetNamesIsUnaffected) {
  AddServiceTarget();
  auto other = cg_->CreateChild("other.service");
  ASSERT_TRUE(other.ok()) << other.status();
  UdpReceiver rx;
  ASSERT_NE(rx.port(), 0);
  const uint16_t port = rx.port();
  for (int i = 0; i < 5; ++i) {
    Recreate((*other)->path());
    auto r = RunClonedIntoCgroup(
        (*other)->path(), [port] { return UdpSendto("127.0.0.1", port); });
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, 0);
  }
  EXPECT_EQ(rx.Drain(), 5);
  // A TCP connect to a port nobody listens on is refused by the peer, not
  // by egress.
  EXPECT_EQ(RunClonedIntoCgroup((*other)->path(),
                                [] { return TcpConnect("127.0.0.2", 1); })
                .value_or(-1),
            ECONNREFUSED);
  // Removing the target lifts the watch too: a re-created svc is free.
  CtlOk({"target", "remove", "svc"});
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_UDP4_SENDMSG), 0);
  Recreate(svc_->path());
  EXPECT_EQ(RunClonedIntoCgroup(svc_->path(),
                                [port] { return UdpSendto("127.0.0.1", port); })
                .value_or(-1),
            0);
  EXPECT_EQ(rx.Drain(), 1);
}

// An engine of its own over the real kernel (no egressd): the workload API
// is the engine's, for the container targets to call.
class WorkloadParentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    bpffs_dir_ = absl::StrCat("/sys/fs/bpf/egress-test-workload-", getpid());
    auto root = Cgroup2Root();
    ASSERT_TRUE(root.ok()) << root.status();
    cgroup_root_ = *root;
    auto kernel = BpfKernel::Open(bpffs_dir_, "/sys/fs/bpf", cgroup_root_,
                                  LockHolder{getpid(), ""});
    ASSERT_TRUE(kernel.ok()) << kernel.status();
    kernel_ = *std::move(kernel);
    EngineOptions o;
    o.save = [](const StateWrite&) { return absl::OkStatus(); };
    o.normalize_cgroup = [root = cgroup_root_](const std::string& p) {
      return NormalizeCgroupPath(p, root);
    };
    engine_ = std::make_unique<Engine>(*kernel_, DaemonState{}, o);
    auto reader = EventReader::Create(
        kernel_->maps().events_fd(),
        [this](const egress_event& e) { events_.push_back(e); });
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    auto parent = TestCgroup::Create("workloads");
    ASSERT_TRUE(parent.ok()) << parent.status();
    parent_ = *std::move(parent);
  }

  void TearDown() override {
    if (engine_) {
      engine_->UnregisterWorkloadParent(parent_ ? parent_->relative_path() : "")
          .IgnoreError();
      engine_->RemoveTarget("app").IgnoreError();
    }
    reader_.reset();
    engine_.reset();
    kernel_.reset();
    if (parent_) parent_->Remove().IgnoreError();
    if (!bpffs_dir_.empty()) RemoveTree(bpffs_dir_).IgnoreError();
  }

  // The verdict records of `cgroup_id` read since the last call.
  std::vector<egress_event> RecordsOf(uint64_t cgroup_id) {
    events_.clear();
    reader_->Drain().IgnoreError();
    std::vector<egress_event> out;
    for (const egress_event& e : events_) {
      if (e.cgroup_id == cgroup_id && e.kind == EGRESS_EVENT_VERDICT) {
        out.push_back(e);
      }
    }
    return out;
  }

  std::string bpffs_dir_, cgroup_root_;
  std::unique_ptr<BpfKernel> kernel_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EventReader> reader_;
  std::vector<egress_event> events_;
  std::unique_ptr<TestCgroup> parent_;
};

TEST_F(WorkloadParentTest, UnclassifiedChildGetsTheDefaultUntilClassified) {
  UdpReceiver rx;
  ASSERT_NE(rx.port(), 0);
  const uint16_t port = rx.port();
  auto send = [port] { return UdpSendto("127.0.0.1", port); };
  // The target a container will be classified into: no rules.
  control::TargetSpec app;
  app.name = "app";
  app.source_value = parent_->relative_path() + "/not-yet";
  ASSERT_TRUE(engine_->AddTarget(app).ok());
  ASSERT_TRUE(engine_
                  ->RegisterWorkloadParent(parent_->relative_path(),
                                           Engine::WorkloadDefault::kDeny)
                  .ok());

  // A container appears: denied from its first instruction, reason said.
  auto c1 = parent_->CreateChild("docker-1.scope");
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(RunClonedIntoCgroup((*c1)->path(), send).value_or(-1), EPERM);
  std::vector<egress_event> recs = RecordsOf((*c1)->id());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].verdict, EGRESS_VERDICT_DENY);
  EXPECT_EQ(recs[0].reason, EGRESS_REASON_UNCLASSIFIED);
  EXPECT_EQ(recs[0].target_id, EGRESS_TARGET_UNCLASSIFIED_DENY);

  // egressd finds it is no target's: it passes.
  ASSERT_TRUE(engine_->ClassifyWorkloadCgroup((*c1)->id(), "").ok());
  EXPECT_EQ(RunClonedIntoCgroup((*c1)->path(), send).value_or(-1), 0);
  EXPECT_EQ(rx.Drain(), 1);
  // ... or that it is app's: app's rules decide, under app's id.
  ASSERT_TRUE(engine_->ClassifyWorkloadCgroup((*c1)->id(), "app").ok());
  EXPECT_EQ(RunClonedIntoCgroup((*c1)->path(), send).value_or(-1), EPERM);
  recs = RecordsOf((*c1)->id());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].reason, EGRESS_REASON_NO_MATCH);
  EXPECT_NE(recs[0].target_id, EGRESS_TARGET_UNCLASSIFIED_DENY);

  // Audit as the default: let through, recorded as UNCLASSIFIED.
  ASSERT_TRUE(engine_
                  ->RegisterWorkloadParent(parent_->relative_path(),
                                           Engine::WorkloadDefault::kAudit)
                  .ok());
  auto c2 = parent_->CreateChild("docker-2.scope");
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(RunClonedIntoCgroup((*c2)->path(), send).value_or(-1), 0);
  EXPECT_EQ(rx.Drain(), 1);
  recs = RecordsOf((*c2)->id());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].verdict, EGRESS_VERDICT_AUDIT);
  EXPECT_EQ(recs[0].reason, EGRESS_REASON_UNCLASSIFIED);

  // Unregistered: unclassified children pass again, unrecorded.
  ASSERT_TRUE(engine_->UnregisterWorkloadParent(parent_->relative_path()).ok());
  auto c3 = parent_->CreateChild("docker-3.scope");
  ASSERT_TRUE(c3.ok()) << c3.status();
  EXPECT_EQ(RunClonedIntoCgroup((*c3)->path(), send).value_or(-1), 0);
  EXPECT_TRUE(RecordsOf((*c3)->id()).empty());
  EXPECT_EQ(rx.Drain(), 1);
}

}  // namespace
}  // namespace egress::testing
