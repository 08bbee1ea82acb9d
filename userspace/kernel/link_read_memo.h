// ReadLinks without reading every pin again: the answer for a link
// directory is kept while nothing it was made of can have changed.
//
// Reconcile reads every target's links every 500 ms. A full read opens each
// hook's pin (a path walk, an fd, the link's info, a close): 200 targets
// cost egressd 44-50 ms of CPU per second while nothing changed. What can
// change an answer, and how a kept one notices:
//  - a pin removed, made or replaced: the directory's modification time
//    (or the directory itself: device, inode). The time is the kernel's
//    coarse clock, so a change in the same tick as the one before could
//    leave it equal: an answer is kept only when the directory's time was
//    over a second old at the read.
//  - a held link detached, or its cgroup gone: each held link's info is
//    read every time (one call per hook, no path walk).
//  - another cgroup asked about (the target's cgroup made again): part of
//    the key.
//  - a pinned link egressd does not hold: a read that finds one attached is
//    unsettled, and an unsettled read is never kept (one that is detached
//    cannot attach again).
//  - a read that failed part way (no descriptor for a pin or a copy): it
//    counts other links than the held ones, and is not kept.
#ifndef EGRESS_USERSPACE_KERNEL_LINK_READ_MEMO_H_
#define EGRESS_USERSPACE_KERNEL_LINK_READ_MEMO_H_

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "userspace/kernel/target_programs.h"

namespace egress {

class LinkReadMemo {
 public:
  // ReadLinks(link_dir, cgroup_id, held(), hooks), or the answer kept for
  // `link_dir` when the directory and `held_ids` (LinkInfo of each held
  // link, one per hook, {} where none is held) are as they were then.
  // `held` gives the held links for a full read (copies the caller may
  // take without its lock); it is called only then.
  LinkHealth Read(const std::string& link_dir, uint64_t cgroup_id,
                  const std::vector<LinkIds>& held_ids,
                  absl::FunctionRef<HeldLinks()> held,
                  const std::vector<HookSpec>& hooks);

  // Forgets the answers of `link_dir` and of the directories below it; a
  // full read under way meanwhile (any directory's) keeps no answer.
  void Forget(const std::string& link_dir);

  // Full reads and answers kept, since the start, and the directories with
  // an answer kept now (what tests check).
  uint64_t full_reads() const;
  uint64_t kept_reads() const;
  size_t entries() const;

 private:
  struct Seen {
    dev_t dev = 0;
    ino_t ino = 0;
    struct timespec mtime {};
    uint64_t cgroup_id = 0;
    std::vector<LinkIds> held;
    LinkHealth health;
  };

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Seen> seen_;
  uint64_t full_reads_ = 0, kept_reads_ = 0;
  // Forget calls so far: a read that overlapped one keeps nothing.
  uint64_t forgets_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_LINK_READ_MEMO_H_
