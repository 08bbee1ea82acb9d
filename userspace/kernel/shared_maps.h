// The maps every program instance shares, pinned under <bpffs>/maps, and
// every write and read egressd makes on them. Keys and values are the abi.h
// structs; map walks are bounded (map_walk.h).
#ifndef EGRESS_USERSPACE_KERNEL_SHARED_MAPS_H_
#define EGRESS_USERSPACE_KERNEL_SHARED_MAPS_H_

#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/dns_sweep.h"
#include "userspace/kernel/peer_evictions.h"
#include "userspace/kernel/program_maps.h"
#include "userspace/policy/compile.h"

namespace egress {

// A ruleset's entries in one map: how many, and the sum of a hash of each
// entry's key and value bytes, the key's ruleset left out (the same entries
// give the same sum in any order and under any ruleset id; another entry,
// value or one missing changes it, but for a 2^-64 chance). The hash is this
// process's (absl::Hash): compared within it only.
struct RulesetTally {
  size_t count = 0;
  uint64_t digest = 0;
  bool operator==(const RulesetTally& o) const {
    return count == o.count && digest == o.digest;
  }
};
using RulesetTallies = std::map<uint32_t, RulesetTally>;

class SharedMaps {
 public:
  // Reuses the maps pinned in `maps_dir`, creating and pinning the missing
  // ones. FailedPrecondition when a pinned map does not match this build's
  // definition (an ABI change needs a new pin directory).
  static absl::StatusOr<std::unique_ptr<SharedMaps>> OpenOrCreate(
      const std::string& maps_dir);

  const std::string& dir() const { return dir_; }
  int events_fd() const { return events_.get(); }

  // targets[id]. One 8-byte update: readers see the old or the new value.
  // Errno status of the update or lookup (InvalidArgument/NotFound for an
  // id past EGRESS_MAX_TARGETS).
  absl::Status SetTargetConfig(uint32_t target_id,
                               const egress_target_config& config);
  absl::StatusOr<egress_target_config> TargetConfig(uint32_t target_id) const;

  // Writes every entry of a compiled rule set. ResourceExhausted when a map
  // is full (the caller then deletes what was written: DeleteEntries).
  absl::Status WriteEntries(const policy::CompiledRuleset& compiled);
  // Deletes the entries of a compiled rule set; missing keys are ignored.
  absl::Status DeleteEntries(const policy::CompiledRuleset& compiled);
  // True when the maps hold exactly the set's entries under its ruleset (no
  // entry missing, changed or extra), by the tallies of one walk per map
  // (CountsByRuleset). Errno status of a walk.
  absl::StatusOr<bool> HasEntries(
      const policy::CompiledRuleset& compiled) const;
  // The rulesets other than the set's own that hold exactly its entries
  // under their own id (every key's ruleset replaced, nothing else): a copy
  // of the set, such as the spare a stopped egressd left. By the same
  // tallies as HasEntries, ascending; none for a set of no entries. Errno
  // status of a walk.
  absl::StatusOr<std::vector<uint32_t>> CopiesOf(
      const policy::CompiledRuleset& compiled) const;
  // The next HasEntries, CopiesOf, DeleteRulesetsExcept or MaxRulesetInMaps
  // walks the maps again: for a writer of the pinned maps other than this
  // object (a test), which would otherwise be seen only kRulesetCountsFor
  // later.
  void ForgetCounts() const;
  // Deletes every rule, port, exact, unix and name entry whose ruleset is
  // not in `keep`: clears what an interrupted apply left behind. A map whose
  // tallies show no such ruleset is not walked; the keys go in batches.
  // Returns how many were deleted.
  absl::StatusOr<size_t> DeleteRulesetsExcept(const std::set<uint32_t>& keep);
  // The largest ruleset id present in any rule map (0 when empty).
  absl::StatusOr<uint32_t> MaxRulesetInMaps() const;

  // Counters of a target summed over CPUs, with the totals derived;
  // ResetCounters zeroes them and forgets the target's rule hits (a new
  // target with a recycled id starts from nothing). Errno status of the
  // lookup, update or a delete.
  absl::StatusOr<egress_counters> Counters(uint32_t target_id) const;
  absl::Status ResetCounters(uint32_t target_id);
  // Decisions per rule id of a target (0 = default action), summed over CPUs.
  absl::StatusOr<std::map<uint32_t, uint64_t>> RuleHits(
      uint32_t target_id) const;
  // Deletes the rule_hits keys of these rules of a target (rules that are
  // gone; a key not there is no error). Errno status of a delete.
  absl::Status DeleteRuleHits(uint32_t target_id,
                              const std::vector<uint32_t>& rule_ids);
  // user_targets[uid] = target id; a missing uid is no error to delete.
  // Errno status of the update or delete (ResourceExhausted when full).
  absl::Status SetUserTarget(uint32_t uid, uint32_t target_id);
  absl::Status DeleteUserTarget(uint32_t uid);
  absl::StatusOr<std::map<uint32_t, uint32_t>> UserTargets() const;

  // The watch instances' maps (abi.h, bpf/lib/config.h). A missing key is
  // no error to delete. Errno status of the update or delete
  // (ResourceExhausted when full).
  // watch_names[{parent, name}] = target id.
  absl::Status SetWatchName(uint64_t parent_cgroup_id, const std::string& name,
                            uint32_t target_id);
  absl::Status DeleteWatchName(uint64_t parent_cgroup_id,
                               const std::string& name);
  // SetWatchName where no name is written yet: AlreadyExists otherwise.
  absl::Status AddWatchName(uint64_t parent_cgroup_id, const std::string& name,
                            uint32_t target_id);
  // Every watch_names entry of `parent_cgroup_id` (its watch instance went).
  absl::Status DeleteWatchNamesOf(uint64_t parent_cgroup_id);
  // watch_parents[parent] = what its watch instance does with a child no
  // map names.
  absl::Status SetWatchParent(uint64_t parent_cgroup_id,
                              const egress_watch_parent& parent);
  absl::Status DeleteWatchParent(uint64_t parent_cgroup_id);
  // cgroup_classes[cgroup] = target id or EGRESS_CGROUP_*.
  absl::Status SetCgroupClass(uint64_t cgroup_id, uint32_t value);

  // attach_target (maps.h): the target id the shared set reads at the
  // cgroup `cgroup_id`. The kernel makes the value at the set's first attach
  // there: NotFound before that (no link of the set on the cgroup yet).
  absl::Status SetAttachTarget(uint64_t cgroup_id, uint32_t target_id);
  absl::StatusOr<uint32_t> AttachTarget(uint64_t cgroup_id) const;
  int attach_target_fd() const { return attach_target_.get(); }
  // Makes `live` (an attach_target map that loaded programs read) the pinned
  // one, replacing pin and fd: a reload must reuse the storage of the live
  // programs, never a map made again. Errno status of the pin.
  absl::Status AdoptAttachTarget(UniqueFd live);
  absl::Status DeleteCgroupClass(uint64_t cgroup_id);
  // Every cgroup_classes entry.
  absl::StatusOr<std::map<uint64_t, uint32_t>> CgroupClasses() const;

  // Forgets what a target's sockets taught the kernel: the UDP peers, the
  // DNS queries in flight and the names learned (dns_bindings). Then adds
  // one to the target's peer generation (peer_gens), so that no way of the
  // receive path's filter of recorded peers (udp_peer_filter) vouches for a
  // deleted peer when the id serves a target again. Errno status of a delete
  // (an entry evicted meanwhile is fine) or of the generation's update. The
  // udp_peers entries deleted are counted apart from evictions (PeerEvictions).
  absl::Status DeletePeers(uint32_t target_id);
  // What udp_peers holds and lost for targets `ids` (PeerEvictions), and the
  // evictions of every target since this object was made. One look (the
  // counters of `ids`, then one batched walk of udp_peers) serves every
  // call within `max_age` of it that asks for no other id. Errno status of
  // a counter lookup or of the walk.
  absl::StatusOr<UdpPeerReport> UdpPeers(const std::vector<uint32_t>& ids,
                                         absl::Duration max_age);
  // The DNS learning counters of a target summed over CPUs; ResetCounters
  // zeroes them too.
  absl::StatusOr<egress_dns_counters> DnsCounters(uint32_t target_id) const;
  // Deletes the dns_bindings entries dead for long at `now_ns` (the
  // bpf_ktime_get_ns clock) and counts what it saw (dns_sweep.h).
  absl::StatusOr<DnsSweep> SweepDnsBindings(uint64_t now_ns);

  // Pins again, from the fds held here, every map whose pin is gone (the
  // directory too). Returns how many; errno status of the mkdir or a pin.
  absl::StatusOr<int> PinMissing();

  // The id of every map, by name: what the pinned programs must read.
  // Errno status of reading a map's info.
  absl::StatusOr<MapIds> Ids() const;

  // Number of entries of a map (walks it): for status and tests.
  absl::StatusOr<size_t> CountEntries(absl::string_view map) const;

 private:
  SharedMaps() = default;
  int FdOf(absl::string_view map) const;
  // Every map's fd with its pin name (const for a const SharedMaps): every
  // map of bpf/maps.h, so that a pin removed is made again (PinMissing) and
  // a program reading another map of that name is reloaded (Ids).
  template <typename Self>
  static auto All(Self& self) {
    using Fd =
        std::conditional_t<std::is_const_v<Self>, const UniqueFd, UniqueFd>;
    // Pin names and fds in the same order.
    static constexpr const char* kNames[] = {
        "targets",       "port_classes",   "rules",           "udp_peers",
        "rule_hits",     "event_limits",   "counters",        "events",
        "unix_rules",    "dns_queries",    "dns_names",       "dns_bindings",
        "dns_counters",  "dns_scratch",    "user_targets",    "watch_names",
        "watch_parents", "cgroup_classes", "watch_scratch",   "attach_target",
        "peer_gens",     "exact_rules",    "udp_peer_filter", "flows",
        "dns_streams",   "udp_connects"};
    Fd* fds[] = {
        &self.targets_,       &self.port_classes_,    &self.rules_,
        &self.udp_peers_,     &self.rule_hits_,       &self.event_limits_,
        &self.counters_,      &self.events_,          &self.unix_rules_,
        &self.dns_queries_,   &self.dns_names_,       &self.dns_bindings_,
        &self.dns_counters_,  &self.dns_scratch_,     &self.user_targets_,
        &self.watch_names_,   &self.watch_parents_,   &self.cgroup_classes_,
        &self.watch_scratch_, &self.attach_target_,   &self.peer_gens_,
        &self.exact_rules_,   &self.udp_peer_filter_, &self.flows_,
        &self.dns_streams_,   &self.udp_connects_};
    static_assert(std::size(kNames) == std::size(fds));
    std::vector<std::pair<const char*, Fd*>> all;
    for (size_t i = 0; i < std::size(fds); ++i)
      all.emplace_back(kNames[i], fds[i]);
    return all;
  }

  // Each ruleset's entries in the rule maps (rules, port_classes,
  // exact_rules, unix_rules, dns_names), from one batched walk of each:
  // what HasEntries compares a compiled set with, what MaxRulesetInMaps
  // reads, and what tells DeleteRulesetsExcept whether a map has anything
  // to delete. A restart asks HasEntries for every target's set in turn: a
  // walk per target was quadratic (200 targets x 1,000 rules: over 100 s),
  // and a lookup per entry took a third of a 200-target restart. Kept until
  // the next write or delete through this object and for at most
  // kRulesetCountsFor (another writer of the pinned maps, e.g. a test, is
  // caught by the age).
  struct RulesetCounts {
    absl::Time taken;
    RulesetTallies rules, ports, exact, unix_paths, names;
  };
  static constexpr absl::Duration kRulesetCountsFor = absl::Seconds(2);
  absl::StatusOr<RulesetCounts> CountsByRuleset() const;
  mutable std::mutex counts_mu_;
  mutable std::optional<RulesetCounts> counts_;

  // UdpPeers: the evictions derived, and when the last look was taken and
  // for which ids. peers_mu_ also orders a look against DeletePeers and
  // ResetCounters, so that no look straddles a delete or a reset.
  absl::StatusOr<UdpPeerReport> LookAtPeersLocked(
      const std::vector<uint32_t>& ids);
  // DeletePeers' part in udp_peers: deletes and counts the target's entries.
  absl::Status DeletePeerEntries(uint32_t target_id);
  std::mutex peers_mu_;
  PeerEvictions evictions_;
  std::optional<absl::Time> peers_taken_;
  std::set<uint32_t> peers_ids_;

  std::string dir_;
  UniqueFd targets_, port_classes_, rules_, udp_peers_, rule_hits_,
      event_limits_, counters_, events_, unix_rules_, dns_queries_, dns_names_,
      dns_bindings_, dns_counters_, dns_scratch_, user_targets_, watch_names_,
      watch_parents_, cgroup_classes_, watch_scratch_, attach_target_,
      peer_gens_, exact_rules_, udp_peer_filter_, flows_, dns_streams_,
      udp_connects_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_SHARED_MAPS_H_
