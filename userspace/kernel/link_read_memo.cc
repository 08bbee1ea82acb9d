#include "userspace/kernel/link_read_memo.h"

#include <sys/stat.h>
#include <time.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress {
namespace {

// How old a directory's modification time must be for an answer read after
// it to be kept: longer than a tick of the coarse clock the kernel stamps
// it with, so that any later change gives another time.
constexpr int64_t kSettledNs = 1'000'000'000;

int64_t Ns(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

LinkHealth LinkReadMemo::Read(const std::string& link_dir, uint64_t cgroup_id,
                              const std::vector<LinkIds>& held_ids,
                              absl::FunctionRef<HeldLinks()> held,
                              const std::vector<HookSpec>& hooks) {
  // Counted before the stat: a Forget after it (a Detach that removed the
  // directory once it was stat'ed) must stop this read from being kept.
  uint64_t forgets_before = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forgets_before = forgets_;
  }
  struct stat st {};
  const bool dir_seen = stat(link_dir.c_str(), &st) == 0;
  if (dir_seen) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = seen_.find(link_dir);
    if (it != seen_.end()) {
      const Seen& s = it->second;
      if (s.dev == st.st_dev && s.ino == st.st_ino &&
          Ns(s.mtime) == Ns(st.st_mtim) && s.cgroup_id == cgroup_id &&
          s.held == held_ids) {
        ++kept_reads_;
        return s.health;
      }
      seen_.erase(it);
    }
  }
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  // The directory was stat'ed before this read: a change during it gives
  // the next call another time, and a full read.
  LinkHealth health = ReadLinks(link_dir, cgroup_id, held(), hooks);
  // A settled read counts exactly the held links: every link attached is
  // held (one that is not is to adopt) and every held one attached is
  // pinned (else to pin again). A read that counts otherwise could not
  // open what it read (out of descriptors): never kept, or it would stay
  // wrong until the directory changed.
  int held_attached = 0, held_live = 0;
  for (const LinkIds& ids : held_ids) {
    if (ids.cgroup_id == 0) continue;
    ++held_attached;
    if (ids.cgroup_id == cgroup_id) ++held_live;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++full_reads_;
  // A Forget during the read (a Detach of this set) may have removed what
  // it read: kept, the answer would outlive the directory it names.
  if (dir_seen && forgets_ == forgets_before && health.unsettled == 0 &&
      health.attached == held_attached && health.live == held_live &&
      Ns(now) - Ns(st.st_mtim) > kSettledNs) {
    seen_[link_dir] =
        Seen{st.st_dev, st.st_ino, st.st_mtim, cgroup_id, held_ids, health};
  }
  return health;
}

void LinkReadMemo::Forget(const std::string& link_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  ++forgets_;
  const std::string below = absl::StrCat(link_dir, "/");
  absl::erase_if(seen_, [&](const auto& entry) {
    return entry.first == link_dir || absl::StartsWith(entry.first, below);
  });
}

uint64_t LinkReadMemo::full_reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return full_reads_;
}

uint64_t LinkReadMemo::kept_reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_reads_;
}

size_t LinkReadMemo::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}

}  // namespace egress
