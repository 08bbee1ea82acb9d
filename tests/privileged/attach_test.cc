// The kernel layer's attach, on a real cgroup: AttachPinnedTo is all or
// nothing. A failure at any link's pin leaves no hook of the call attached
// and no link pin behind.
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "egress_bpf.skel.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/jiffies_clock.h"
#include "userspace/kernel/link_read_memo.h"
#include "userspace/kernel/shared_maps.h"
#include "userspace/kernel/target_programs.h"

namespace egress::testing {
namespace {

constexpr uint32_t kTargetId = 7;

// True when a BPF object (a pin) exists at `path`.
bool IsPin(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return false;
  close(fd);
  return true;
}

// A pinned program set for kTargetId in a private bpffs directory, and a
// throwaway cgroup to attach it to.
class AttachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    root_ = absl::StrCat("/sys/fs/bpf/egress-attach-test-", getpid());
    ASSERT_OK(EnsureBpffsDir(root_, "/sys/fs/bpf"));
    std::string maps_dir = root_ + "/maps";
    ASSERT_OK(EnsureBpffsDir(maps_dir, "/sys/fs/bpf"));
    ASSERT_OK_AND_ASSIGN(maps_, SharedMaps::OpenOrCreate(maps_dir));
    prog_dir_ = root_ + "/targets/7";
    ASSERT_OK(LoadAndPinPrograms(kTargetId, maps_dir, prog_dir_));
    ASSERT_OK_AND_ASSIGN(cg_, TestCgroup::Create("attach"));
    ASSERT_OK_AND_ASSIGN(cg_fd_, OpenCgroup(cg_->path()));
  }

  void TearDown() override {
    if (!prog_dir_.empty()) {
      EXPECT_OK(DetachAndRemove(prog_dir_));
    }
    maps_.reset();
    if (!root_.empty()) {
      EXPECT_OK(RemoveTree(root_));
    }
  }

  // Hooks of the set attached to the test cgroup, summed over attach types.
  int HooksAttached() const {
    int n = 0;
    for (const HookSpec& h : AllHooks()) {
      int count = AttachedPrograms(cg_->path(), h.attach_type);
      EXPECT_GE(count, 0) << "query " << h.name;
      n += count;
    }
    return n;
  }

  // Link pins (final or staged) left in `link_dir`.
  std::vector<std::string> LinkPinsIn(const std::string& link_dir) const {
    std::vector<std::string> out;
    for (const HookSpec& h : AllHooks()) {
      std::string pin = absl::StrCat(link_dir, "/link_", h.name);
      if (IsPin(pin)) out.push_back(pin);
      if (IsPin(pin + "_new")) out.push_back(pin + "_new");
    }
    return out;
  }

  std::string root_, prog_dir_;
  std::unique_ptr<SharedMaps> maps_;
  std::unique_ptr<TestCgroup> cg_;
  UniqueFd cg_fd_;
};

TEST_F(AttachTest, AttachesEveryHookOnceAndAdoptsOnSecondCall) {
  std::string link_dir = prog_dir_ + "/c1";
  ASSERT_OK(AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id()));
  const int hooks = static_cast<int>(AllHooks().size());
  EXPECT_EQ(HooksAttached(), hooks);
  EXPECT_EQ(LinkPinsIn(link_dir).size(), AllHooks().size());
  // A second call finds every link live on the cgroup and keeps it.
  ASSERT_OK(AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id()));
  EXPECT_EQ(HooksAttached(), hooks);
  ASSERT_OK(DetachAndRemoveLinks(link_dir));
  EXPECT_EQ(HooksAttached(), 0);
}

TEST_F(AttachTest, CheckLinksCountsLiveAttachedAndDefunct) {
  std::string link_dir = prog_dir_ + "/c1";
  const int hooks = static_cast<int>(AllHooks().size());
  LinkHealth none = CheckLinks(link_dir, cg_->id());
  EXPECT_EQ(none.total, hooks);
  EXPECT_EQ(none.live, 0);
  EXPECT_FALSE(none.all_live());
  EXPECT_TRUE(none.defunct());

  ASSERT_OK(AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id()));
  LinkHealth live = CheckLinks(link_dir, cg_->id());
  EXPECT_EQ(live.live, hooks);
  EXPECT_EQ(live.attached, hooks);
  EXPECT_TRUE(live.all_live());
  EXPECT_FALSE(live.defunct());

  // Asked about another cgroup (or none): attached, but not live there.
  for (uint64_t other : {cg_->id() + 1, uint64_t{0}}) {
    LinkHealth elsewhere = CheckLinks(link_dir, other);
    EXPECT_EQ(elsewhere.live, 0) << other;
    EXPECT_FALSE(elsewhere.all_live()) << other;
    EXPECT_FALSE(elsewhere.defunct()) << other;
  }

  // The cgroup goes away: its links outlive it pinned, attached to nothing.
  uint64_t gone = cg_->id();
  cg_fd_ = UniqueFd();
  ASSERT_OK(cg_->Remove());
  LinkHealth after;
  for (int i = 0; i < 100; ++i) {  // the kernel releases the cgroup async
    after = CheckLinks(link_dir, gone);
    if (after.defunct()) break;
    usleep(50 * 1000);
  }
  EXPECT_TRUE(after.defunct());
  EXPECT_EQ(after.live, 0);
}

// Where the obstacle sits: at the staging name a link is pinned under
// (bpf_obj_pin fails with EEXIST), or at the final name (the rename over it
// fails with EISDIR).
enum class Obstacle { kStagedPin, kFinalPin };

struct FailAtCase {
  size_t n;  // index in AllHooks() of the link whose pin fails
  Obstacle obstacle;
};

void PrintTo(const FailAtCase& c, std::ostream* os) {
  *os << AllHooks()[c.n].name
      << (c.obstacle == Obstacle::kStagedPin ? " at staged pin" : " at pin");
}

class AttachFailureTest : public AttachTest,
                          public ::testing::WithParamInterface<FailAtCase> {};

TEST_P(AttachFailureTest, FailureAtNthLinkPinLeavesNothingAttached) {
  const FailAtCase& c = GetParam();
  ASSERT_LT(c.n, AllHooks().size());
  std::string link_dir = prog_dir_ + "/c1";
  ASSERT_OK(MakeDirs(link_dir, 0700));
  std::string blocked =
      absl::StrCat(link_dir, "/link_", AllHooks()[c.n].name,
                   c.obstacle == Obstacle::kStagedPin ? "_new" : "");
  // A directory: unlink() cannot clear it, and nothing can be pinned or
  // renamed over it.
  ASSERT_EQ(mkdir(blocked.c_str(), 0700), 0) << blocked;

  absl::Status st =
      AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id());
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(HooksAttached(), 0) << "after: " << st;
  EXPECT_EQ(LinkPinsIn(link_dir), std::vector<std::string>{});

  // Once the obstacle is gone, the same call attaches every hook.
  ASSERT_EQ(rmdir(blocked.c_str()), 0);
  ASSERT_OK(AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id()));
  EXPECT_EQ(HooksAttached(), static_cast<int>(AllHooks().size()));
}

std::vector<FailAtCase> FailAtCases() {
  std::vector<FailAtCase> out;
  const size_t hooks = AllHooks().size();
  for (size_t n : {size_t{0}, size_t{1}, hooks / 2, hooks - 1}) {
    out.push_back({n, Obstacle::kStagedPin});
    out.push_back({n, Obstacle::kFinalPin});
  }
  return out;
}

std::string FailAtName(const ::testing::TestParamInfo<FailAtCase>& info) {
  return absl::StrCat(
      AllHooks()[info.param.n].name,
      info.param.obstacle == Obstacle::kStagedPin ? "_staged" : "_final");
}

INSTANTIATE_TEST_SUITE_P(EveryPosition, AttachFailureTest,
                         ::testing::ValuesIn(FailAtCases()), FailAtName);

// AttachPinned keeps its links beside the programs: the same guarantee.
TEST_F(AttachTest, AttachPinnedFailureLeavesNothingAttached) {
  std::string blocked =
      absl::StrCat(prog_dir_, "/link_", AllHooks().back().name);
  ASSERT_EQ(mkdir(blocked.c_str(), 0700), 0) << blocked;
  EXPECT_FALSE(AttachPinned(prog_dir_, cg_fd_.get(), cg_->id()).ok());
  EXPECT_EQ(HooksAttached(), 0);
  EXPECT_EQ(LinkPinsIn(prog_dir_), std::vector<std::string>{});
}

// The kernel's id of the link pinned at `pin` (0 if none).
uint32_t PinnedLinkId(const std::string& pin) {
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return 0;
  return info.id;
}

// Out of descriptors (EMFILE), bpf_obj_get cannot open a pin that is
// there: KeepPinned must not take it for missing and pin its held link over
// it (which would unpin, and so detach, the link the pin held).
TEST_F(AttachTest, KeepPinnedOutOfDescriptorsLeavesPinsAlone) {
  const std::string held_dir = prog_dir_ + "/c1";
  const std::string other_dir = prog_dir_ + "/c2";
  HeldLinks held;
  ASSERT_OK(
      AttachPinnedTo(prog_dir_, held_dir, cg_fd_.get(), cg_->id(), &held));
  // Other live links on the same cgroup, moved to the held set's pin names:
  // the pins now hold links egressd does not hold.
  ASSERT_OK(AttachPinnedTo(prog_dir_, other_dir, cg_fd_.get(), cg_->id()));
  std::vector<uint32_t> pinned_ids;
  for (const HookSpec& h : AllHooks()) {
    const std::string from = absl::StrCat(other_dir, "/link_", h.name);
    const std::string to = absl::StrCat(held_dir, "/link_", h.name);
    ASSERT_EQ(rename(from.c_str(), to.c_str()), 0) << from;
    pinned_ids.push_back(PinnedLinkId(to));
  }
  const std::string first_pin =
      absl::StrCat(held_dir, "/link_", AllHooks()[0].name);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Every descriptor below a low limit taken (bounded by the limit).
    struct rlimit lim = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(101);
    for (int i = 0; i < 1024 && open("/dev/null", O_RDONLY) >= 0; ++i) {
    }
    if (bpf_obj_get(first_pin.c_str()) >= 0 || errno != EMFILE) _exit(102);
    _exit(KeepPinned(held_dir, held));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "pins made again (101, 102: setup)";
  for (size_t i = 0; i < AllHooks().size(); ++i) {
    EXPECT_EQ(
        PinnedLinkId(absl::StrCat(held_dir, "/link_", AllHooks()[i].name)),
        pinned_ids[i])
        << AllHooks()[i].name;
  }
  DetachHeld(held);
  ASSERT_OK(DetachAndRemoveLinks(held_dir));
  ASSERT_OK(DetachAndRemoveLinks(other_dir));
}

// Every program of a loaded set holds egressd's jiffies clock mapping in its
// own .rodata (bpf/lib/clock.h), so the set keeps it when egressd is killed
// and a restart adopts the pins. Read back from the pinned programs' maps.
TEST_F(AttachTest, EveryPinnedProgramCarriesTheJiffiesClock) {
  const JiffiesClock& c = KernelJiffiesClock();
  ASSERT_NE(c.tick_ns, 0u) << JiffiesClockWarning();
  // Where the three constants lie in .rodata, by the skeleton's layout.
  egress_bpf* layout = egress_bpf__open();
  ASSERT_NE(layout, nullptr);
  const auto* base = reinterpret_cast<const char*>(layout->rodata);
  const size_t tick_at =
      reinterpret_cast<const char*>(&layout->rodata->egress_clock_tick_ns) -
      base;
  const size_t j0_at =
      reinterpret_cast<const char*>(&layout->rodata->egress_clock_j0) - base;
  const size_t t0_at =
      reinterpret_cast<const char*>(&layout->rodata->egress_clock_t0_ns) - base;
  egress_bpf__destroy(layout);
  for (const HookSpec& h : AllHooks()) {
    UniqueFd prog(bpf_obj_get(ProgPin(prog_dir_, h).c_str()));
    ASSERT_GE(prog.get(), 0) << h.name;
    uint32_t map_ids[16] = {};
    bpf_prog_info info{};
    info.nr_map_ids = 16;
    info.map_ids = reinterpret_cast<uint64_t>(map_ids);
    uint32_t len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(prog.get(), &info, &len), 0) << h.name;
    bool found = false;
    for (uint32_t i = 0; i < std::min(info.nr_map_ids, 16u); ++i) {
      UniqueFd map(bpf_map_get_fd_by_id(map_ids[i]));
      ASSERT_GE(map.get(), 0);
      bpf_map_info m{};
      uint32_t mlen = sizeof(m);
      ASSERT_EQ(bpf_obj_get_info_by_fd(map.get(), &m, &mlen), 0);
      if (!absl::EndsWith(m.name, ".rodata")) continue;
      std::vector<char> value(m.value_size);
      const uint32_t zero = 0;
      ASSERT_EQ(bpf_map_lookup_elem(map.get(), &zero, value.data()), 0);
      ASSERT_LE(t0_at + 8, value.size());
      uint64_t tick, j0, t0;
      std::memcpy(&tick, value.data() + tick_at, 8);
      std::memcpy(&j0, value.data() + j0_at, 8);
      std::memcpy(&t0, value.data() + t0_at, 8);
      EXPECT_EQ(tick, c.tick_ns) << h.name;
      EXPECT_EQ(j0, c.j0) << h.name;
      EXPECT_EQ(t0, c.t0_ns) << h.name;
      found = true;
    }
    EXPECT_TRUE(found) << h.name << " has no .rodata";
  }
}

// LinkReadMemo keeps a read only while nothing it was made of can have
// changed, and every change that matters is seen at the next read: a pin
// removed, a held link detached, another cgroup asked about, a directory
// changed too recently for its time to tell.
TEST_F(AttachTest, KeptLinkReadsSeeEveryChange) {
  const std::string link_dir = prog_dir_ + "/c1";
  HeldLinks held;
  ASSERT_OK(
      AttachPinnedTo(prog_dir_, link_dir, cg_fd_.get(), cg_->id(), &held));
  const int hooks = static_cast<int>(AllHooks().size());
  LinkReadMemo memo;
  auto ids = [&] {
    std::vector<LinkIds> out;
    for (const UniqueFd& fd : held) {
      out.push_back(fd ? LinkInfo(fd.get()) : LinkIds{});
    }
    return out;
  };
  auto copies = [&] {
    HeldLinks out;
    for (const UniqueFd& fd : held) {
      out.emplace_back(fd ? fcntl(fd.get(), F_DUPFD_CLOEXEC, 0) : -1);
    }
    return out;
  };
  // Each answer is the one a full read gives now.
  auto read = [&](uint64_t cgroup_id) {
    LinkHealth got = memo.Read(link_dir, cgroup_id, ids(), copies, AllHooks());
    LinkHealth now = ReadLinks(link_dir, cgroup_id, copies());
    EXPECT_EQ(got.live, now.live);
    EXPECT_EQ(got.attached, now.attached);
    EXPECT_EQ(got.total, now.total);
    EXPECT_EQ(got.unsettled, now.unsettled);
    return got;
  };
  // Instead of waiting a second: the directory's time set back.
  auto age_dir = [&] {
    struct timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= 10;
    times[1] = times[0];
    ASSERT_EQ(utimensat(AT_FDCWD, link_dir.c_str(), times, 0), 0);
  };

  // Changed just now: never kept.
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_EQ(memo.kept_reads(), 0u);
  age_dir();
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_EQ(memo.kept_reads(), 2u);
  const uint64_t full = memo.full_reads();

  // A pin removed: read again, unsettled (to pin again), so never kept.
  ASSERT_EQ(
      unlink(absl::StrCat(link_dir, "/link_", AllHooks()[0].name).c_str()), 0);
  EXPECT_EQ(read(cg_->id()).unsettled, 1);
  EXPECT_EQ(read(cg_->id()).unsettled, 1);
  EXPECT_EQ(memo.full_reads(), full + 2);
  EXPECT_EQ(memo.kept_reads(), 2u);
  EXPECT_EQ(KeepPinned(link_dir, held), 1);
  age_dir();
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_TRUE(read(cg_->id()).all_live());
  EXPECT_EQ(memo.kept_reads(), 3u);

  // A read that cannot open the pins (out of descriptors) is not kept.
  {
    const std::vector<LinkIds> now = ids();
    struct rlimit was;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &was), 0);
    memo.Forget(link_dir);
    age_dir();
    struct rlimit none = {0, was.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
    const LinkHealth starved =
        memo.Read(link_dir, cg_->id(), now, copies, AllHooks());
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &was), 0);
    EXPECT_EQ(starved.live, 0);
    EXPECT_TRUE(read(cg_->id()).all_live());
    EXPECT_EQ(memo.kept_reads(), 3u);
  }

  // Another cgroup asked about (the target's made again): read again.
  EXPECT_EQ(read(cg_->id() + 1).live, 0);

  // A held (and pinned) link detached: its info tells, no directory change.
  ASSERT_EQ(bpf_link_detach(held[1].get()), 0);
  const LinkHealth detached = read(cg_->id());
  EXPECT_EQ(detached.live, hooks - 1);
  EXPECT_EQ(detached.attached, hooks - 1);
  // A held link no longer attached is one to let go: unsettled, never
  // kept.
  EXPECT_EQ(detached.unsettled, 1);
  EXPECT_EQ(read(cg_->id()).live, hooks - 1);
  EXPECT_EQ(memo.kept_reads(), 3u);

  // Forgotten with the directory: the next read is a full one.
  const uint64_t before = memo.full_reads();
  memo.Forget(prog_dir_);
  read(cg_->id());
  EXPECT_EQ(memo.full_reads(), before + 1);
  ASSERT_OK(DetachAndRemoveLinks(link_dir));
}

}  // namespace
}  // namespace egress::testing
