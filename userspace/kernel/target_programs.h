// The program set of one target: loaded with the target id baked in, pinned
// under <bpffs>/targets/<id>/prog_<hook>, attached to the target's cgroup
// with bpf_links pinned beside them (link_<hook>). Pinned links keep
// enforcement in force when egressd exits or is killed; while it runs,
// egressd also holds every link open (HeldLinks), so that removing a pin
// detaches nothing.
#ifndef EGRESS_USERSPACE_KERNEL_TARGET_PROGRAMS_H_
#define EGRESS_USERSPACE_KERNEL_TARGET_PROGRAMS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// One hook: the program's name in the object, the pin suffix, and the
// attach type.
struct HookSpec {
  const char* program;  // egress_connect4
  const char* name;     // connect4
  int attach_type;      // enum bpf_attach_type
};
// Every hook a target gets, in attach order: the unix hooks last, and only
// on a kernel that has them (KernelHasUnixHooks).
const std::vector<HookSpec>& AllHooks();
// The hooks of the one program set that serves every user target from the
// cgroup2 root (egress_target_id EGRESS_TARGET_BY_UID): AllHooks() but the
// per-packet and per-TCP-state ones, which would run for every socket of
// the host (see docs/bypasses.md for what the packet hook adds).
const std::vector<HookSpec>& UserHooks();
// The hooks of the program set loaded for `target_id`: UserHooks() for
// EGRESS_TARGET_BY_UID and for a watch instance (EGRESS_TARGET_BY_CGROUP:
// it finds its target from the calling task, which packet and TCP state
// callbacks do not run in), else AllHooks().
const std::vector<HookSpec>& HooksOf(uint32_t target_id);

// The pin paths of a hook's program and link in a program or link
// directory: <dir>/prog_<hook>, <dir>/link_<hook>.
std::string ProgPin(const std::string& dir, const HookSpec& h);
std::string LinkPin(const std::string& dir, const HookSpec& h);

// One link pin as found: for status and for deciding whether to attach.
struct LinkState {
  std::string hook;
  bool pinned = false;     // a link pin exists
  uint64_t cgroup_id = 0;  // cgroup it is attached to; 0 = detached/defunct
};

// The links of one link directory, counted against one cgroup.
struct LinkHealth {
  int live = 0;      // pinned and attached to the cgroup asked about
  int attached = 0;  // pinned and attached to some cgroup that still exists
  int total = 0;     // hooks of a program set: AllHooks().size()
  int repinned = 0;  // pins found removed and made again from held links
  // ReadLinks only: hooks where KeepPinned would have work (a pin to make
  // again, a link to adopt or let go).
  int unsettled = 0;

  // Every hook enforces on the cgroup asked about: nothing to attach.
  bool all_live() const { return total > 0 && live == total; }
  // No link is attached anywhere (the cgroup is gone, or none was ever
  // attached): the directory protects nothing and may be removed.
  bool defunct() const { return attached == 0; }
};

// The kernel's id of a link, the cgroup it is attached to (0 when detached
// or defunct) and its program; all 0 when `link_fd` is no link.
struct LinkIds {
  uint32_t id = 0;
  uint64_t cgroup_id = 0;
  uint32_t prog_id = 0;
  bool operator==(const LinkIds& o) const {
    return id == o.id && cgroup_id == o.cgroup_id && prog_id == o.prog_id;
  }
};
LinkIds LinkInfo(int link_fd);

// The links of one link directory that egressd holds open, one slot per hook
// of AllHooks() (empty where it holds none). An open link fd keeps the link
// attached whatever happens to its pin: uid 0 may unlink a pin without any
// capability, and that alone must never detach a hook.
using HeldLinks = std::vector<UniqueFd>;

// Loads the programs for `target_id` against the maps pinned in `maps_dir`
// and pins them into `prog_dir` (created 0700). Replaces older program pins.
// Errors: the errno status of the load (PermissionDenied without CAP_BPF;
// InvalidArgument when the verifier rejects a program, with libbpf's log on
// stderr), or of the mkdir or a pin.
// `hooks`: the programs to pin, HooksOf(target_id) when null.
// `watch_level`: for EGRESS_TARGET_BY_CGROUP, the level of the parent cgroup
// the set will be attached to (bpf/lib/config.h).
absl::Status LoadAndPinPrograms(uint32_t target_id, const std::string& maps_dir,
                                const std::string& prog_dir,
                                const std::vector<HookSpec>* hooks = nullptr,
                                uint32_t watch_level = 0);

// True when every program of `hooks` is pinned in `prog_dir`.
bool ProgramsPinned(const std::string& prog_dir,
                    const std::vector<HookSpec>& hooks = AllHooks());

// Attaches every pinned program of `prog_dir` to the cgroup `cgroup_fd` with
// bpf_link (multi-attach: programs of other tools and of ancestors keep
// running, and no descendant can override ours) and pins the links in
// `prog_dir` (link_<hook>), replacing older pins atomically. Links that are
// already live on `cgroup_id` are kept as they are, so adopting a running
// set never attaches twice.
// All or nothing: on any failure every link this call created is detached
// and its pin removed, so no hook of this call stays attached (links it
// adopted stay as they were). Errors: NotFound when a program pin is
// missing (LoadAndPinPrograms first), the errno status of a failed attach
// (e.g. NotFound/InvalidArgument for a cgroup that went away) or of a pin
// that cannot be made (AlreadyExists, ...). On success `held`, when given,
// holds every link of the set, adopted or new.
// `hooks`: the program set's hooks (HooksOf), here and below.
absl::Status AttachPinned(const std::string& prog_dir, int cgroup_fd,
                          uint64_t cgroup_id, HeldLinks* held = nullptr,
                          const std::vector<HookSpec>& hooks = AllHooks());

// Same, with the link pins in `link_dir` (created 0700) instead of
// `prog_dir`: one program set attached to several cgroups (a cgroupPattern
// target keeps one link directory per matching cgroup).
absl::Status AttachPinnedTo(const std::string& prog_dir,
                            const std::string& link_dir, int cgroup_fd,
                            uint64_t cgroup_id, HeldLinks* held = nullptr,
                            const std::vector<HookSpec>& hooks = AllHooks());

// AttachPinnedTo for a set whose programs read the cgroup storage of their
// attachment (the shared set): the hook `first` (one that never denies)
// is attached, or adopted, before every other, then `after_first` runs (it
// writes the target id into the storage the first link made), then the
// other hooks in `hooks` order. All or nothing as AttachPinnedTo; an error
// of `after_first` takes back the links of this call.
absl::Status AttachPinnedFirst(
    const std::string& prog_dir, const std::string& link_dir, int cgroup_fd,
    uint64_t cgroup_id, HeldLinks* held, const std::vector<HookSpec>& hooks,
    size_t first, const std::function<absl::Status()>& after_first);

// Keeps the pins of `link_dir` and the links `held` holds in line: a held
// link whose pin was removed is pinned again (it never detached), a pinned
// live link is adopted into `held`, and a held link whose cgroup is gone is
// let go. Returns how many pins it made again; a pin it cannot make stays
// missing, for CheckLinks to report and AttachPinnedTo to retry.
int KeepPinned(const std::string& link_dir, HeldLinks& held,
               const std::vector<HookSpec>& hooks = AllHooks());

// Pins again, from the links `held` holds, every program of `prog_dir`
// whose pin is gone (a link keeps its program alive). Returns how many it
// pinned; a program no held link runs stays missing (LoadAndPinPrograms).
int KeepProgramsPinned(const std::string& prog_dir,
                       const std::vector<const HeldLinks*>& held,
                       const std::vector<HookSpec>& hooks = AllHooks());

// Detaches every link of `held` (bpf_link_detach: also a link whose pin is
// gone or that another process holds) and closes it.
void DetachHeld(HeldLinks& held);

// Subdirectories of `dir` (full paths, sorted): the link directories of a
// pattern target live below its program directory.
std::vector<std::string> LinkDirsBelow(const std::string& dir);

// Detaches the links pinned in `link_dir` and removes the directory.
// Errors: the errno status of removing a pin or the directory.
absl::Status DetachAndRemoveLinks(const std::string& link_dir);

// The state of every link pin of `prog_dir` (or of a link directory), one
// per hook of AllHooks(), in that order. Never fails: a pin that cannot be
// opened counts as not pinned.
std::vector<LinkState> LinkStates(
    const std::string& prog_dir,
    const std::vector<HookSpec>& hooks = AllHooks());

// LinkStates(link_dir) counted against `cgroup_id` (0: no cgroup, so
// nothing is live). The one place that decides whether a target's hooks are
// in force on its cgroup. With `held`, a hook whose pin is missing counts
// by the link egressd holds for it: the link enforces, pinned or not.
LinkHealth CheckLinks(const std::string& link_dir, uint64_t cgroup_id,
                      const HeldLinks* held = nullptr,
                      const std::vector<HookSpec>& hooks = AllHooks());

// What KeepPinned then CheckLinks would report, without their work: makes
// no pin and leaves `held` as it is, so it may run beside a change (it only
// reads). Hooks where KeepPinned would change something count in
// `unsettled`; their health is what it would be after that change.
LinkHealth ReadLinks(const std::string& link_dir, uint64_t cgroup_id,
                     const HeldLinks& held,
                     const std::vector<HookSpec>& hooks = AllHooks());

// Detaches every pinned link (bpf_link_detach, so no other holder keeps it
// alive), also those in link directories below it, and removes `prog_dir`
// with its pins. Errors as DetachAndRemoveLinks.
absl::Status DetachAndRemove(const std::string& prog_dir);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_TARGET_PROGRAMS_H_
