// KernelPort over the real kernel: the pinned shared maps, program sets
// pinned under <bpffs>/v<ABI>/targets/<id>, cgroups under the cgroup2 mount.
// It holds every link it attached or adopted open, so that a removed pin
// never detaches a hook while egressd runs; Links() pins it again.
#ifndef EGRESS_USERSPACE_DAEMON_KERNEL_PORT_BPF_H_
#define EGRESS_USERSPACE_DAEMON_KERNEL_PORT_BPF_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "userspace/common/instance_lock.h"
#include "userspace/daemon/kernel_port.h"
#include "userspace/kernel/link_read_memo.h"
#include "userspace/kernel/shared_maps.h"

namespace egress {

class BpfKernel : public KernelPort {
 public:
  // `bpffs_dir` is egressd's pin root (without the ABI version), made on
  // the bpffs at `bpffs_mount` (mounted if missing) and locked for `holder`
  // (LockDirectory: FailedPrecondition naming the egressd that holds it);
  // `cgroup_root` the cgroup2 mount. `shared_set`: literal-cgroup targets
  // use the one shared program set (docs/design.md section 1) instead of a
  // program set each; targets already pinned keep what they run.
  static absl::StatusOr<std::unique_ptr<BpfKernel>> Open(
      const std::string& bpffs_dir, const std::string& bpffs_mount,
      const std::string& cgroup_root, const LockHolder& holder,
      bool shared_set = false);

  // <bpffs_dir>/v<ABI>: the pins of this ABI version.
  static std::string VersionDir(const std::string& bpffs_dir);
  // The pin directory's lock, taken out of this object: a start that failed
  // holds it while it removes the pins it made, after this object (and
  // every fd of a link or map) is gone.
  UniqueFd TakePinsLock() { return std::move(pins_lock_); }

  SharedMaps& maps() { return *maps_; }
  // The link reads kept (ReadLinks), for tests.
  const LinkReadMemo& link_reads() const { return link_reads_; }
  // Detaches and removes the pins of older ABI versions (an upgrade).
  void RetireOlderAbis();
  // Loads and pins the shared program set now, if it is on and not pinned
  // yet, so that the first target added does not wait for the verifier
  // (egressd calls it off its start path). A no-op with a set per target.
  absl::Status PrepareSharedSet();
  // Whether the shared program set is loaded (or adopted) and its programs
  // known: what a first target on it no longer waits for. nullopt with a set
  // per target (egressd --noshared_program_set). Never blocks on a load
  // under way (the /metrics scrape asks it).
  std::optional<bool> SharedSetLoaded() const;

  absl::Status WriteEntries(const policy::CompiledRuleset& set) override;
  absl::Status DeleteEntries(const policy::CompiledRuleset& set) override;
  absl::StatusOr<bool> HasEntries(const policy::CompiledRuleset& set) override;
  absl::StatusOr<std::vector<uint32_t>> CopiesOf(
      const policy::CompiledRuleset& set) override;
  absl::Status SetTargetConfig(uint32_t id,
                               const egress_target_config& config) override;
  absl::Status ResetCounters(uint32_t id) override;
  absl::Status DeletePeers(uint32_t id) override;
  absl::StatusOr<uint32_t> MaxRulesetInMaps() override;
  absl::StatusOr<size_t> DeleteRulesetsExcept(
      const std::set<uint32_t>& keep) override;
  absl::StatusOr<egress_counters> Counters(uint32_t id) override;
  absl::StatusOr<std::map<uint32_t, uint64_t>> RuleHits(uint32_t id) override;
  absl::Status DeleteRuleHits(uint32_t id,
                              const std::vector<uint32_t>& rule_ids) override;
  absl::StatusOr<UdpPeerReport> UdpPeers(
      const std::vector<uint32_t>& ids) override;
  absl::StatusOr<egress_dns_counters> DnsCounters(uint32_t id) override;
  absl::StatusOr<DnsSweep> SweepDnsBindings() override;
  absl::Status SetUserTarget(uint32_t uid, uint32_t id) override;
  absl::Status DeleteUserTarget(uint32_t uid) override;
  absl::StatusOr<std::map<uint32_t, uint32_t>> UserTargets() override;
  bool ProgramsLoaded(uint32_t id) override;
  absl::Status LoadPrograms(uint32_t id) override;
  absl::StatusOr<bool> RefreshPrograms(uint32_t id) override;
  absl::StatusOr<int> RepairPins() override;
  absl::Status RemovePrograms(uint32_t id) override;
  std::vector<uint32_t> PinnedTargets() override;
  absl::StatusOr<egress_target_config> TargetConfig(uint32_t id) override;
  absl::StatusOr<LinkedCgroup> LinkedCgroupOf(uint32_t id) override;
  absl::StatusOr<uint64_t> CgroupId(const std::string& rel) override;
  CgroupMatches MatchCgroups(const std::string& pattern) override;
  std::vector<std::string> ChildCgroups(const std::string& rel) override;
  absl::StatusOr<std::string> CgroupPathOf(uint64_t cgroup_id) override;
  absl::Status Attach(uint32_t id, uint64_t link_set, const std::string& rel,
                      uint64_t cgroup_id) override;
  LinkHealth Links(uint32_t id, uint64_t link_set, uint64_t cgroup_id) override;
  LinkHealth ReadLinks(uint32_t id, uint64_t link_set,
                       uint64_t cgroup_id) override;
  std::vector<uint64_t> LinkSets(uint32_t id) override;
  bool LinkSetDefunct(uint32_t id, uint64_t link_set) override;
  absl::Status Detach(uint32_t id, uint64_t link_set) override;
  absl::Status Watch(const std::string& rel, uint64_t parent_id) override;
  absl::Status Unwatch(uint64_t parent_id) override;
  std::vector<uint64_t> WatchedParents() override;
  absl::Status AddWatchName(uint64_t parent_id, const std::string& name,
                            uint32_t id) override;
  absl::Status SetWatchName(uint64_t parent_id, const std::string& name,
                            uint32_t id) override;
  absl::Status DeleteWatchName(uint64_t parent_id,
                               const std::string& name) override;
  absl::Status SetWatchParent(uint64_t parent_id,
                              const egress_watch_parent& parent) override;
  absl::Status DeleteWatchParent(uint64_t parent_id) override;
  absl::Status SetCgroupClass(uint64_t cgroup_id, uint32_t value) override;
  absl::Status DeleteCgroupClass(uint64_t cgroup_id) override;

 private:
  BpfKernel() = default;
  std::string TargetDir(uint32_t id) const;
  // <version_dir>/watch/<parent cgroup id>: a watch set's programs and
  // links.
  std::string WatchDir(uint64_t parent_id) const;
  // Keeps the programs of the watch set pinned in `dir` (attached at a
  // parent of `level`) loaded, so that a parent made again at that level
  // gets its set without another pass through the verifier.
  void NoteWatchPrograms(const std::string& dir, uint32_t level);
  // Pins the kept programs of `level` into `dir`; false when none are kept
  // or they no longer use the pinned maps (the caller loads a set then).
  bool PinWatchProgramsOfLevel(const std::string& dir, uint32_t level);
  std::string LinkDir(uint32_t id, uint64_t link_set) const;
  std::string Abs(const std::string& rel) const;
  // Detaches and forgets the held links of one set.
  void DropHeld(uint32_t id, uint64_t link_set);

  // ---- The shared set (EGRESS_TARGET_BY_STORAGE) ----
  // <version_dir>/shared: its programs; its links stay in each target's
  // directory.
  std::string SharedDir() const;
  // Loads and pins the shared set unless pinned; notes its program ids.
  absl::Status LoadShared();
  // Notes the ids of the pinned shared programs (none pinned: none); an
  // error when a pin is there but cannot be read.
  absl::Status NoteSharedPrograms();
  // True when the target's own links run the shared set (or, with no link
  // yet, when it has no programs of its own and the shared set is on). An
  // error when a link pin cannot be read (EMFILE...): never a guess.
  absl::StatusOr<bool> OnSharedSet(uint32_t id);
  // True when a target other than `id` has the shared set at `cgroup_id`:
  // the two would share one storage value. An error as OnSharedSet.
  absl::StatusOr<bool> SharedTakenAt(uint64_t cgroup_id, uint32_t id);
  // The pinned attach_target made the one the live shared programs read.
  absl::Status AdoptLiveStorage();

  std::string bpffs_dir_;
  std::string bpffs_mount_;
  std::string version_dir_;  // <bpffs_dir>/v<ABI>
  LockHolder holder_;
  UniqueFd pins_lock_;  // LockDirectory(bpffs_dir_), taken again on repair
  std::string cgroup_root_;
  std::unique_ptr<SharedMaps> maps_;
  std::mutex held_mu_;
  // (target id, link set) -> the links held open.
  std::map<std::pair<uint32_t, uint64_t>, HeldLinks> held_;
  // The links of each watch set, by parent cgroup id (under held_mu_).
  std::map<uint64_t, HeldLinks> watch_held_;
  // The programs of the last watch set loaded or adopted for each parent
  // level (under held_mu_): one set per level, a few fds.
  std::map<uint32_t, std::vector<UniqueFd>> watch_programs_;
  bool shared_set_ = false;
  std::mutex shared_mu_;
  // Program ids of the shared set, loaded or adopted (under shared_mu_).
  std::set<uint32_t> shared_prog_ids_;
  // !shared_prog_ids_.empty(), readable without shared_mu_ (held for the
  // verifier's whole load).
  std::atomic<bool> shared_loaded_{false};
  // The last link reads kept while nothing they were made of changed.
  LinkReadMemo link_reads_;
  // Targets whose link pins could not be read, said once in the log until
  // they can be read again (each reconcile pass asks).
  std::mutex unreadable_mu_;
  std::set<uint32_t> unreadable_said_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_KERNEL_PORT_BPF_H_
