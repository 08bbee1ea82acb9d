// egressd --shared_program_set: one program set, loaded once, serves every
// single-cgroup target; each attachment finds its target id in the cgroup
// storage egressd writes (docs/design.md section 1). Real egressd, real
// cgroups, real sockets on loopback.
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
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
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/text_count.h"
#include "userspace/common/fs.h"
#include "userspace/common/instance_lock.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/kernel_port_bpf.h"
#include "userspace/kernel/target_programs.h"

namespace egress::testing {
namespace {

// The ids of the programs attached directly to `cgroup_path` for every hook
// of a cgroup target; empty when a query fails.
std::set<uint32_t> ProgramIds(const std::string& cgroup_path) {
  std::set<uint32_t> out;
  UniqueFd fd(open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY));
  if (!fd) return {};
  for (const HookSpec& h : AllHooks()) {
    uint32_t ids[64], count = 64, flags = 0;
    if (bpf_prog_query(fd.get(), static_cast<bpf_attach_type>(h.attach_type), 0,
                       &flags, ids, &count) != 0) {
      return {};
    }
    out.insert(ids, ids + count);
  }
  return out;
}

class SharedSetTest : public EgressdTest {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {"--shared_program_set"};
    EgressdTest::SetUp();
  }

  std::string VersionDir() const {
    return absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION);
  }

  // A second test cgroup beside cg_ (removed by the test's end).
  TestCgroup* OtherCgroup(const std::string& name) {
    auto cg = TestCgroup::Create(name);
    EXPECT_TRUE(cg.ok()) << cg.status();
    if (!cg.ok()) return nullptr;
    others_.push_back(*std::move(cg));
    return others_.back().get();
  }

  // Applies a policy file for target `name` on `cg` allowing TCP to
  // 127.0.0.2 on `ports`: target and rules in one step.
  void ApplyTarget(const std::string& name, const TestCgroup& cg,
                   const std::vector<int>& ports) {
    std::string y = absl::StrCat(
        "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n  "
        "name: ",
        name, "\nspec:\n  target:\n    cgroupPath: ", cg.relative_path(),
        "\n  mode: enforce\n  egress:\n");
    for (int port : ports) {
      absl::StrAppend(&y,
                      "  - to:\n    - ipBlock: {cidr: 127.0.0.2/32}\n"
                      "    ports:\n    - port: ",
                      port, "\n      protocol: TCP\n");
    }
    const std::string file = absl::StrCat(state_dir_, "/../", name, ".yaml");
    std::ofstream(file) << y;
    CtlOk({"apply", "-f", file});
  }

  int Connect(int port, const TestCgroup* cg) {
    return InCgroup([port] { return TcpConnect("127.0.0.2", port); }, cg);
  }

  void TearDown() override {
    EgressdTest::TearDown();
    others_.clear();
  }

  std::vector<std::unique_ptr<TestCgroup>> others_;
};

TEST_F(SharedSetTest, TwoTargetsOnTheSharedSetKeepTheirOwnPolicy) {
  TestCgroup* b = OtherCgroup("privb");
  ASSERT_NE(b, nullptr);
  ApplyTarget("a", *cg_, {40001});
  ApplyTarget("b", *b, {40002});

  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  EXPECT_EQ(Connect(40002, cg_.get()), EPERM);
  EXPECT_EQ(Connect(40001, b), EPERM);
  EXPECT_TRUE(Allowed(Connect(40002, b)));
  // One program set: the same programs run at both cgroups, and no target
  // has programs of its own.
  EXPECT_EQ(ProgramIds(cg_->path()), ProgramIds(b->path()));
  struct stat st;
  EXPECT_NE(stat((VersionDir() + "/targets/1/prog_connect4").c_str(), &st), 0);
  EXPECT_EQ(stat((VersionDir() + "/shared/prog_connect4").c_str(), &st), 0);
}

// A fresh egressd loads the shared set before any target asks for it (off
// its start path), and the first target runs exactly those programs.
TEST_F(SharedSetTest, AFreshEgressdLoadsTheSetAheadOfTheFirstTarget) {
  const std::string pin = VersionDir() + "/shared/prog_connect4";
  struct stat st;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (stat(pin.c_str(), &st) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(stat(pin.c_str(), &st), 0) << "not loaded ahead: " << pin;
  UniqueFd prog(bpf_obj_get(pin.c_str()));
  ASSERT_TRUE(prog.valid()) << strerror(errno);
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(prog.get(), &info, &len), 0);
  ApplyTarget("a", *cg_, {40001});
  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  EXPECT_EQ(Connect(40002, cg_.get()), EPERM);
  EXPECT_TRUE(ProgramIds(cg_->path()).count(info.id))
      << "the target runs programs other than the ones loaded ahead";
}

// /metrics says when egressd's start work is done: the gauge is 1 only once
// every program of the shared set is pinned, and it gets there unasked.
TEST_F(SharedSetTest, MetricSaysWhenTheSetIsLoaded) {
  std::string metrics;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (int i = 0; i < 1000 && absl::Now() < deadline; ++i) {
    metrics = ScrapeMetrics();
    if (absl::StrContains(metrics, "\negress_shared_program_set_loaded 1\n")) {
      break;
    }
    // Until then it says 0 (never absent: this egressd runs the shared set).
    ASSERT_TRUE(
        absl::StrContains(metrics, "\negress_shared_program_set_loaded 0\n"))
        << metrics;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(
      absl::StrContains(metrics, "\negress_shared_program_set_loaded 1\n"))
      << metrics;
  for (const HookSpec& h : AllHooks()) {
    struct stat st;
    EXPECT_EQ(stat(ProgPin(VersionDir() + "/shared", h).c_str(), &st), 0)
        << "said loaded without " << ProgPin(VersionDir() + "/shared", h);
  }
}

// With a program set per target there is no shared set to wait for, and no
// series that would say 0 for ever.
class OwnProgramSetsTest : public EgressdTest {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {"--noshared_program_set"};
    EgressdTest::SetUp();
  }
};

TEST_F(OwnProgramSetsTest, NoSharedSetMetric) {
  const std::string metrics = ScrapeMetrics();
  ASSERT_TRUE(absl::StrContains(metrics, "\negress_build_info{")) << metrics;
  EXPECT_FALSE(absl::StrContains(metrics, "egress_shared_program_set_loaded"));
}

TEST_F(SharedSetTest, OneProgramSetIsLoadedForManyTargets) {
  constexpr int kTargets = 6;
  std::vector<TestCgroup*> cgs = {cg_.get()};
  for (int i = 1; i < kTargets; ++i) {
    cgs.push_back(OtherCgroup(absl::StrCat("privn", i)));
    ASSERT_NE(cgs.back(), nullptr);
  }
  std::set<uint32_t> all;
  for (int i = 0; i < kTargets; ++i) {
    AddTarget(absl::StrCat("t", i), cgs[i]);
  }
  for (int i = 0; i < kTargets; ++i) {
    std::set<uint32_t> ids = ProgramIds(cgs[i]->path());
    EXPECT_EQ(ids.size(), AllHooks().size()) << "cgroup " << i;
    all.insert(ids.begin(), ids.end());
    EXPECT_EQ(Connect(40001, cgs[i]), EPERM) << "cgroup " << i;
  }
  // Every hook of every target runs one of the same programs.
  EXPECT_EQ(all.size(), AllHooks().size());
}

TEST_F(SharedSetTest, AddingATargetUnderAConnectLoopGivesNoSpuriousEperm) {
  // The shared set is loaded and attached elsewhere first, so what is
  // measured is the attach of an already loaded set.
  TestCgroup* first = OtherCgroup("privf");
  ASSERT_NE(first, nullptr);
  ApplyTarget("first", *first, {40001});
  // A worker connects in a tight loop (bounded in count and time) to a
  // port the coming policy allows: it must never see EPERM, also not in
  // the instant between the first attach and the write of the target id.
  std::atomic<int> eperm{0}, tries{0};
  std::thread prober([&] {
    auto r = RunInCgroupMulti(
        cg_->path(),
        [] {
          int denied = 0, n = 0;
          absl::Time end = absl::Now() + absl::Seconds(3);
          while (n < 300000 && absl::Now() < end) {
            if (TcpConnect("127.0.0.2", 40001) == EPERM) ++denied;
            ++n;
          }
          return std::vector<int>{denied, n};
        },
        absl::Seconds(15));
    if (r.ok()) {
      eperm = (*r)[0];
      tries = (*r)[1];
    }
  });
  absl::SleepFor(absl::Milliseconds(500));
  ApplyTarget("web", *cg_, {40001});
  prober.join();
  EXPECT_GT(tries.load(), 100);
  EXPECT_EQ(eperm.load(), 0);
  // And it enforces.
  EXPECT_EQ(Connect(40002, cg_.get()), EPERM);
}

TEST_F(SharedSetTest, RestartAdoptsTheSharedSetAndItsTargets) {
  TestCgroup* b = OtherCgroup("privr");
  ASSERT_NE(b, nullptr);
  ApplyTarget("a", *cg_, {40001});
  ApplyTarget("b", *b, {40002});
  const std::set<uint32_t> before = ProgramIds(cg_->path());
  StopDaemon(SIGKILL);
  StartDaemon();
  nlohmann::json targets = CtlJson({"target", "list"});
  ASSERT_EQ(targets["targets"].size(), 2u) << targets.dump();
  // Adopted, not attached again or loaded again.
  EXPECT_EQ(ProgramIds(cg_->path()), before);
  EXPECT_EQ(ProgramIds(b->path()), before);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  EXPECT_EQ(Connect(40002, cg_.get()), EPERM);
  EXPECT_EQ(Connect(40001, b), EPERM);
  EXPECT_TRUE(Allowed(Connect(40002, b)));
  // A target added after the restart uses the adopted set.
  TestCgroup* c = OtherCgroup("privr2");
  ASSERT_NE(c, nullptr);
  ApplyTarget("c", *c, {40003});
  EXPECT_EQ(ProgramIds(c->path()), before);
  EXPECT_TRUE(Allowed(Connect(40003, c)));
  EXPECT_EQ(Connect(40001, c), EPERM);
}

TEST_F(SharedSetTest, RemoveThenAddAtTheSameCgroupEnforcesTheNewPolicy) {
  ApplyTarget("old", *cg_, {40001});
  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  CtlOk({"target", "remove", "old"});
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
  EXPECT_TRUE(Allowed(Connect(40002, cg_.get())));
  // Another target takes the freed id, so the storage value the cgroup
  // kept (the old target's id) now names a target that allows 40001: only
  // the write of the new id keeps that from applying here.
  TestCgroup* other = OtherCgroup("privk");
  ASSERT_NE(other, nullptr);
  ApplyTarget("keep", *other, {40001});
  ApplyTarget("new", *cg_, {40002});
  nlohmann::json targets = CtlJson({"target", "list"});
  ASSERT_EQ(targets["targets"].size(), 2u) << targets.dump();
  EXPECT_EQ(Connect(40001, cg_.get()), EPERM);
  EXPECT_TRUE(Allowed(Connect(40002, cg_.get())));
  EXPECT_TRUE(Allowed(Connect(40001, other)));
  EXPECT_EQ(Connect(40002, other), EPERM);
}

TEST_F(SharedSetTest, LiteralAndPatternTargetAtOneCgroupBothEnforce) {
  // A pattern target keeps a program set of its own (one set, a link set
  // per matching cgroup) beside the shared set of the literal target.
  ASSERT_OK_AND_ASSIGN(TestCgroup * ctr, cg_->CreateChild("ctr-1"));
  ApplyTarget("literal", *ctr, {40001, 40002});
  CtlOk({"target", "add", "pattern", "--pattern",
         cg_->relative_path() + "/ctr-*"});
  CtlOk({"allow", "40001/tcp", "127.0.0.2", "--target", "pattern"});
  CtlOk({"allow", "40003/tcp", "127.0.0.2", "--target", "pattern"});
  EXPECT_EQ(InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); },
                          [](int rc) { return rc == EPERM; }, ctr),
            EPERM);  // the pattern's deny
  EXPECT_EQ(AttachedPrograms(ctr->path(), BPF_CGROUP_INET4_CONNECT), 2);
  EXPECT_TRUE(Allowed(Connect(40001, ctr)));
  EXPECT_EQ(Connect(40003, ctr), EPERM);  // the literal's deny
}

TEST_F(SharedSetTest, RestartWithMapPinsGoneKeepsTheLiveStorage) {
  TestCgroup* b = OtherCgroup("privm");
  ASSERT_NE(b, nullptr);
  ApplyTarget("a", *cg_, {40001});
  ApplyTarget("b", *b, {40002});
  StopDaemon(SIGKILL);
  // The map pins go (attach_target with them); programs and links stay.
  ASSERT_TRUE(RemoveTree(VersionDir() + "/maps").ok());
  StartDaemon();
  // The shared set was loaded again against the new maps but reads the
  // storage its links were made with, which still holds each target's id.
  UniqueFd pinned(bpf_obj_get((VersionDir() + "/maps/attach_target").c_str()));
  ASSERT_TRUE(pinned.valid());
  bpf_map_info map{};
  uint32_t len = sizeof(map);
  ASSERT_EQ(bpf_obj_get_info_by_fd(pinned.get(), &map, &len), 0);
  UniqueFd prog(bpf_obj_get((VersionDir() + "/shared/prog_connect4").c_str()));
  ASSERT_TRUE(prog.valid());
  uint32_t map_ids[64] = {};
  bpf_prog_info info{};
  info.nr_map_ids = 64;
  info.map_ids = reinterpret_cast<uint64_t>(map_ids);
  len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(prog.get(), &info, &len), 0);
  EXPECT_NE(std::find(map_ids, map_ids + info.nr_map_ids, map.id),
            map_ids + info.nr_map_ids);
  uint64_t key = cg_->id();
  uint32_t stored = 0;
  ASSERT_EQ(bpf_map_lookup_elem(pinned.get(), &key, &stored), 0);
  EXPECT_NE(stored, 0u);
  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  EXPECT_EQ(Connect(40002, cg_.get()), EPERM);
  EXPECT_EQ(Connect(40001, b), EPERM);
  EXPECT_TRUE(Allowed(Connect(40002, b)));
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 1);
}

// Two single-cgroup targets at one cgroup (a workload and a literal path can
// be): the second gets programs of its own, since the one storage value of
// the cgroup is the first's. Driven through the kernel port, as egressd
// does, with configs that tell the two apart.
TEST_F(SharedSetTest, SecondTargetAtACgroupFallsBackToItsOwnPrograms) {
  StopDaemon(SIGTERM);
  const std::string pins = bpffs_dir_ + "-port";
  ASSERT_OK_AND_ASSIGN(std::string root, Cgroup2Root());
  auto k = BpfKernel::Open(pins, "/sys/fs/bpf", root,
                           LockHolder{getpid(), "shared-set-test"}, true);
  ASSERT_TRUE(k.ok()) << k.status();
  BpfKernel& kernel = **k;
  const std::string rel = cg_->relative_path();
  const uint64_t cg_id = cg_->id();
  egress_target_config deny{};
  deny.mode = EGRESS_MODE_ENFORCE;  // ruleset 0: no rules, everything denied
  egress_target_config off{};
  off.mode = EGRESS_MODE_OFF;
  EXPECT_OK(kernel.SetTargetConfig(1, off));
  EXPECT_OK(kernel.SetTargetConfig(2, off));
  EXPECT_OK(kernel.LoadPrograms(1));
  EXPECT_OK(kernel.Attach(1, KernelPort::kOwnCgroup, rel, cg_id));
  EXPECT_OK(kernel.LoadPrograms(2));
  EXPECT_OK(kernel.Attach(2, KernelPort::kOwnCgroup, rel, cg_id));
  struct stat st;
  const std::string v = absl::StrCat(pins, "/v", EGRESS_ABI_VERSION);
  EXPECT_NE(stat((v + "/targets/1/prog_connect4").c_str(), &st), 0);
  EXPECT_EQ(stat((v + "/targets/2/prog_connect4").c_str(), &st), 0);
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 2);
  ASSERT_OK_AND_ASSIGN(uint32_t stored, kernel.maps().AttachTarget(cg_id));
  EXPECT_EQ(stored, 1u);

  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));
  EXPECT_OK(kernel.SetTargetConfig(1, deny));
  EXPECT_EQ(Connect(40001, cg_.get()), EPERM);  // by the shared set
  EXPECT_OK(kernel.SetTargetConfig(1, off));
  EXPECT_OK(kernel.SetTargetConfig(2, deny));
  EXPECT_EQ(Connect(40001, cg_.get()), EPERM);  // by target 2's own set
  EXPECT_OK(kernel.SetTargetConfig(2, off));
  EXPECT_TRUE(Allowed(Connect(40001, cg_.get())));

  EXPECT_OK(kernel.RemovePrograms(1));
  EXPECT_OK(kernel.RemovePrograms(2));
  EXPECT_EQ(AttachedPrograms(cg_->path(), BPF_CGROUP_INET4_CONNECT), 0);
  k->reset();
  EXPECT_OK(RemoveTree(pins));
  StartDaemon();
}

// Out of descriptors for a moment (EMFILE), the link pins of a target on
// the shared set cannot be opened: that must not read as "no links, no
// programs", which has the start load programs for the target afresh and
// remove its directory, the link pins with it (the target unenforced).
// Driven through the kernel port as Engine::Start does, by an egressd
// started without --shared_program_set (it adopts what an earlier one made).
TEST_F(SharedSetTest, LinkPinsUnreadableForAMomentAreNotTakenForNone) {
  StopDaemon(SIGTERM);
  const std::string pins = bpffs_dir_ + "-port";
  ASSERT_OK_AND_ASSIGN(std::string root, Cgroup2Root());
  const LockHolder me{getpid(), "shared-set-test"};
  auto k = BpfKernel::Open(pins, "/sys/fs/bpf", root, me, true);
  ASSERT_TRUE(k.ok()) << k.status();
  // Also when an assertion stops the test: removing the pins detaches the
  // links nothing else holds.
  absl::Cleanup remove_pins = [&] {
    k = absl::CancelledError("test over");
    RemoveTree(pins).IgnoreError();
  };
  egress_target_config deny{};
  deny.mode = EGRESS_MODE_ENFORCE;  // ruleset 0: no rules, everything denied
  EXPECT_OK((*k)->SetTargetConfig(1, deny));
  EXPECT_OK((*k)->LoadPrograms(1));
  EXPECT_OK(
      (*k)->Attach(1, KernelPort::kOwnCgroup, cg_->relative_path(), cg_->id()));
  k->reset();  // the pins hold the links now, as after egressd stopped
  const std::string link_pin = absl::StrCat(
      pins, "/v", EGRESS_ABI_VERSION, "/targets/1/link_", AllHooks()[0].name);
  struct stat st;
  ASSERT_EQ(stat(link_pin.c_str(), &st), 0);
  ASSERT_EQ(Connect(40001, cg_.get()), EPERM);

  // The child's log: said once while unreadable, then once readable.
  char log_path[] = "/tmp/egress-shared-set-log-XXXXXX";
  const int made = mkstemp(log_path);
  ASSERT_GE(made, 0);
  close(made);
  const std::string log = log_path;
  absl::Cleanup remove_log = [&] { unlink(log.c_str()); };
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (log_fd < 0 || dup2(log_fd, STDERR_FILENO) < 0) _exit(104);
    close(log_fd);
    auto kernel = BpfKernel::Open(pins, "/sys/fs/bpf", root, me, false);
    if (!kernel.ok()) _exit(101);
    // Every descriptor below a low limit taken (bounded by the limit).
    struct rlimit lim = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(102);
    std::vector<int> taken;
    for (int i = 0; i < 1024; ++i) {
      int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      taken.push_back(fd);
    }
    if (bpf_obj_get(link_pin.c_str()) >= 0 || errno != EMFILE) _exit(103);
    bool loaded = true;
    for (int pass = 0; pass < 3; ++pass) {  // as three reconcile passes
      loaded = loaded && (*kernel)->ProgramsLoaded(1);
    }
    for (int fd : taken) close(fd);  // the moment passed
    if (!(*kernel)->ProgramsLoaded(1)) _exit(105);
    // What Engine::Start does with a target whose programs are not loaded.
    if (!loaded) (*kernel)->LoadPrograms(1).IgnoreError();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "101-104: setup";
  std::ifstream log_in(log);
  const std::string said((std::istreambuf_iterator<char>(log_in)),
                         std::istreambuf_iterator<char>());
  EXPECT_EQ(CountOccurrences(said, "its pins are kept as they are"), 1u)
      << said;
  EXPECT_EQ(CountOccurrences(said, "its pins can be read again"), 1u) << said;
  EXPECT_EQ(stat(link_pin.c_str(), &st), 0)
      << "the target's link pins were removed";
  EXPECT_EQ(Connect(40001, cg_.get()), EPERM) << "no longer enforced";

  k = BpfKernel::Open(pins, "/sys/fs/bpf", root, me, true);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_OK((*k)->RemovePrograms(1));
  k->reset();
  EXPECT_OK(RemoveTree(pins));
  StartDaemon();
}

}  // namespace
}  // namespace egress::testing
