// The engine's view of the kernel: rule maps, per-target program sets, their
// links on cgroups, and the cgroup tree. egressd uses BpfKernel
// (kernel_port_bpf.h); the engine tests use a fake, so apply, expiry,
// rollback and reconcile are tested without root.
//
// A target has link sets, one per cgroup it is attached to: a single-cgroup
// target has the set kOwnCgroup, a pattern target one set per matching
// cgroup, keyed by that cgroup's id. User targets have no program set of
// their own: the set of id EGRESS_TARGET_BY_UID (UserHooks) serves them all
// from the cgroup2 root, by uid (SetUserTarget).
#ifndef EGRESS_USERSPACE_DAEMON_KERNEL_PORT_H_
#define EGRESS_USERSPACE_DAEMON_KERNEL_PORT_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "userspace/daemon/cgroup_match.h"
#include "userspace/kernel/dns_sweep.h"
#include "userspace/kernel/peer_evictions.h"
#include "userspace/kernel/target_programs.h"
#include "userspace/policy/compile.h"

namespace egress {

// Where a program set's own links enforce: a cgroup path relative to the
// cgroup2 mount and its id.
struct LinkedCgroup {
  std::string rel;
  uint64_t id = 0;
};

class KernelPort {
 public:
  static constexpr uint64_t kOwnCgroup = 0;

  virtual ~KernelPort() = default;

  // ---- Rule maps (shared by every target) ----
  // Writes every entry of a compiled set; on failure the caller deletes.
  virtual absl::Status WriteEntries(const policy::CompiledRuleset& set) = 0;
  virtual absl::Status DeleteEntries(const policy::CompiledRuleset& set) = 0;
  // True when the maps hold exactly the set's entries under its ruleset (a
  // restart adopts such a set instead of writing a second copy).
  virtual absl::StatusOr<bool> HasEntries(
      const policy::CompiledRuleset& set) = 0;
  // The other rulesets that hold exactly the set's entries under their own
  // id (a restart adopts such a copy as the set's spare), ascending; none
  // for a set of no entries.
  virtual absl::StatusOr<std::vector<uint32_t>> CopiesOf(
      const policy::CompiledRuleset& set) = 0;
  // targets[id]: the one-word switch between rule sets, mode and flags.
  virtual absl::Status SetTargetConfig(uint32_t id,
                                       const egress_target_config& config) = 0;
  virtual absl::Status ResetCounters(uint32_t id) = 0;
  virtual absl::Status DeletePeers(uint32_t id) = 0;
  virtual absl::StatusOr<uint32_t> MaxRulesetInMaps() = 0;
  virtual absl::StatusOr<size_t> DeleteRulesetsExcept(
      const std::set<uint32_t>& keep) = 0;
  virtual absl::StatusOr<egress_counters> Counters(uint32_t id) = 0;
  virtual absl::StatusOr<std::map<uint32_t, uint64_t>> RuleHits(
      uint32_t id) = 0;
  // Deletes target `id`'s rule_hits keys of these rule ids (rules that are
  // gone); a missing key is no error.
  virtual absl::Status DeleteRuleHits(
      uint32_t id, const std::vector<uint32_t>& rule_ids) = 0;
  // The udp_peers figures of targets `ids` (peer_evictions.h): entries
  // recorded, deleted, there now and evicted, and the evictions of every
  // target. A walk of udp_peers at most every few seconds; between, the
  // figures of the last one.
  virtual absl::StatusOr<UdpPeerReport> UdpPeers(
      const std::vector<uint32_t>& ids) = 0;
  // DNS learning counters of a target, summed over CPUs (dns_abi.h).
  virtual absl::StatusOr<egress_dns_counters> DnsCounters(uint32_t id) = 0;
  // Deletes the learned addresses dead for long (dns_sweep.h), now.
  virtual absl::StatusOr<DnsSweep> SweepDnsBindings() = 0;
  // user_targets: which target a uid's processes serve, wherever they run
  // (read by the root program set, id EGRESS_TARGET_BY_UID).
  virtual absl::Status SetUserTarget(uint32_t uid, uint32_t id) = 0;
  // A uid that has no entry is fine.
  virtual absl::Status DeleteUserTarget(uint32_t uid) = 0;
  // Every entry: uid -> target id.
  virtual absl::StatusOr<std::map<uint32_t, uint32_t>> UserTargets() = 0;

  // ---- Program sets ----
  virtual bool ProgramsLoaded(uint32_t id) = 0;
  // Loads and pins the target's programs, replacing leftovers.
  virtual absl::Status LoadPrograms(uint32_t id) = 0;
  // When the target's pinned programs read maps other than the pinned ones
  // (the map pins were removed and the maps made again), loads them again
  // against the pinned maps and moves every link of the target to the new
  // programs, each in one update (no moment without a program). True when
  // it did. Errors: of reading a program's maps, of the load, of an update.
  virtual absl::StatusOr<bool> RefreshPrograms(uint32_t id) = 0;
  // Detaches every link of the target and removes its programs.
  virtual absl::Status RemovePrograms(uint32_t id) = 0;
  // The ids of every program set pinned, known to the state or not.
  virtual std::vector<uint32_t> PinnedTargets() = 0;
  // targets[id] as the hooks read it now.
  virtual absl::StatusOr<egress_target_config> TargetConfig(uint32_t id) = 0;
  // The cgroup the set's own links are attached to; NotFound when none is
  // (no link, or its cgroup is gone).
  virtual absl::StatusOr<LinkedCgroup> LinkedCgroupOf(uint32_t id) = 0;

  // ---- Pins ----
  // Makes again every pin that went while egressd runs (bpffs unmounted, a
  // pin directory removed) from what egressd holds: bpffs and the pin
  // directory, the shared maps from their fds, each program from a link
  // that runs it, and a watch instance's links and programs from the links
  // egressd holds at its parent. A target's link pins are made again by
  // Links(). Returns how many pins it made (0: none was missing); the error
  // of the step that failed.
  virtual absl::StatusOr<int> RepairPins() = 0;

  // ---- Cgroups (paths relative to the cgroup2 mount) ----
  // NotFound when the cgroup does not exist.
  virtual absl::StatusOr<uint64_t> CgroupId(const std::string& rel) = 0;
  virtual CgroupMatches MatchCgroups(const std::string& pattern) = 0;
  // Child directory names of a cgroup (for naming records' cgroups).
  virtual std::vector<std::string> ChildCgroups(const std::string& rel) = 0;
  // The path (relative) of the cgroup with this id, without a walk; NotFound
  // when it is gone.
  virtual absl::StatusOr<std::string> CgroupPathOf(uint64_t cgroup_id) = 0;

  // ---- Links ----
  // Attaches every program of the target to the cgroup as `link_set`; all
  // or nothing. Hooks already live on `cgroup_id` are kept (adoption).
  virtual absl::Status Attach(uint32_t id, uint64_t link_set,
                              const std::string& rel, uint64_t cgroup_id) = 0;
  // The health of a link set; pins removed are made again first (links
  // egressd holds never detached) and live pinned links adopted.
  virtual LinkHealth Links(uint32_t id, uint64_t link_set,
                           uint64_t cgroup_id) = 0;
  // The same health read without any of that work (LinkHealth::unsettled
  // counts what Links() would do): safe beside a change of the target, so
  // the engine reads it without its lock. Never makes a pin or a link.
  virtual LinkHealth ReadLinks(uint32_t id, uint64_t link_set,
                               uint64_t cgroup_id) = 0;
  // The pattern link sets a target has (cgroup ids).
  virtual std::vector<uint64_t> LinkSets(uint32_t id) = 0;
  // True when no hook of the set is pinned to a live cgroup any more.
  virtual bool LinkSetDefunct(uint32_t id, uint64_t link_set) = 0;
  virtual absl::Status Detach(uint32_t id, uint64_t link_set) = 0;

  // ---- Watch instances (bpf/lib/config.h) ----
  // One program set per watched parent cgroup, attached there once with its
  // links pinned (they enforce while egressd is down) and choosing the
  // target of each call from the caller's child cgroup. Watch loads the
  // parent's set unless pinned and attaches it, adopting live links; all or
  // nothing like Attach. `rel`: the parent, relative to the cgroup2 mount.
  virtual absl::Status Watch(const std::string& rel, uint64_t parent_id) = 0;
  // Detaches and removes the parent's set and its watch_names entries;
  // no set is no error.
  virtual absl::Status Unwatch(uint64_t parent_id) = 0;
  // The parents that have a watch set pinned (cgroup ids).
  virtual std::vector<uint64_t> WatchedParents() = 0;
  // watch_names, watch_parents, cgroup_classes (maps.h); deleting a missing
  // entry is no error.
  virtual absl::Status SetWatchName(uint64_t parent_id, const std::string& name,
                                    uint32_t id) = 0;
  virtual absl::Status DeleteWatchName(uint64_t parent_id,
                                       const std::string& name) = 0;
  // SetWatchName where the map names nothing yet: AlreadyExists otherwise.
  // Safe without the engine's lock (one map update).
  virtual absl::Status AddWatchName(uint64_t parent_id, const std::string& name,
                                    uint32_t id) = 0;
  virtual absl::Status SetWatchParent(uint64_t parent_id,
                                      const egress_watch_parent& parent) = 0;
  virtual absl::Status DeleteWatchParent(uint64_t parent_id) = 0;
  virtual absl::Status SetCgroupClass(uint64_t cgroup_id, uint32_t value) = 0;
  virtual absl::Status DeleteCgroupClass(uint64_t cgroup_id) = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_KERNEL_PORT_H_
