// A KernelPort in memory for the engine tests: rule sets by id, target
// configs, program sets, a cgroup tree whose directories can be removed and
// re-created (new ids, as the kernel gives), link sets that go defunct with
// their cgroup, and faults on demand.
#ifndef EGRESS_TESTS_UNIT_FAKE_KERNEL_H_
#define EGRESS_TESTS_UNIT_FAKE_KERNEL_H_

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "userspace/daemon/kernel_port.h"

namespace egress::testing {

class FakeKernel : public KernelPort {
 public:
  static constexpr int kHooks = 10;

  // ---- The test's hands ----
  uint64_t MakeCgroup(const std::string& rel);
  void RemoveCgroup(const std::string& rel);
  // The ruleset a target's hooks use now (0 = none).
  uint32_t ActiveRuleset(uint32_t id) const;
  egress_target_config Config(uint32_t id) const;
  // Ruleset ids with entries in the maps.
  std::set<uint32_t> RulesetsInMaps() const;
  // Ruleset -> how many entries of it the maps hold (every map).
  std::map<uint32_t, size_t> EntriesByRuleset() const;
  // How many of `set`'s entries the maps hold (HasEntries asks for all of
  // them and nothing else): a test checks a set entry by entry.
  size_t EntriesPresent(const policy::CompiledRuleset& set) const;
  // The cgroup id a link set's hooks are attached to (0 = none / defunct).
  uint64_t AttachedTo(uint32_t id, uint64_t link_set) const;
  int attach_calls() const { return attach_calls_; }
  // user_targets as the root program set reads it.
  std::map<uint32_t, uint32_t> Users() const {
    std::lock_guard<std::mutex> lock(mu_);
    return users_;
  }
  // Faults: the Nth WriteEntries from now fails (1 = the next one).
  void FailWriteEntriesAt(int n) { fail_write_at_ = n; }
  // The rules map's max_entries: a write past it fails as the kernel's
  // (ENOSPC), after the entries that fit went in.
  void SetRuleCapacity(size_t n) { rule_capacity_ = n; }
  int write_calls() const { return write_calls_; }
  // A decision of target `id` by rule `rule_id`, as rule__hit counts it.
  void Hit(uint32_t id, uint32_t rule_id) {
    std::lock_guard<std::mutex> lock(mu_);
    ++rule_hits_[{id, rule_id}];
  }
  void FailAttach(bool fail) { fail_attach_ = fail; }
  // Runs at the start of every Attach, outside the fake's own lock: a test
  // holds an attach there (a kernel waiting for its cgroup lock).
  void OnAttach(std::function<void()> f) { on_attach_ = std::move(f); }
  // Runs at the start of every DeleteEntries with the set's ruleset, on the
  // deleting thread, outside the fake's own lock. Set it while no other
  // thread deletes (the spare writer idle).
  void OnDeleteEntries(std::function<void(uint32_t)> f) {
    on_delete_entries_ = std::move(f);
  }
  // Every pin goes (bpffs unmounted): the links stay, held. RepairPins
  // makes them again unless `fail_repair`.
  void LosePins() { pins_lost_ = true; }
  void FailRepairPins(bool fail) { fail_repair_ = fail; }
  // The target's programs read maps that are no longer pinned.
  void MakeProgramsStale(uint32_t id);
  bool ProgramsStale(uint32_t id) const;

  // ---- KernelPort ----
  absl::Status WriteEntries(const policy::CompiledRuleset& set) override;
  absl::Status DeleteEntries(const policy::CompiledRuleset& set) override;
  absl::StatusOr<bool> HasEntries(const policy::CompiledRuleset& set) override;
  absl::StatusOr<std::vector<uint32_t>> CopiesOf(
      const policy::CompiledRuleset& set) override;
  absl::Status SetTargetConfig(uint32_t id,
                               const egress_target_config& config) override;
  absl::Status ResetCounters(uint32_t) override { return absl::OkStatus(); }
  absl::Status DeletePeers(uint32_t) override { return absl::OkStatus(); }
  absl::StatusOr<uint32_t> MaxRulesetInMaps() override;
  absl::StatusOr<size_t> DeleteRulesetsExcept(
      const std::set<uint32_t>& keep) override;
  absl::StatusOr<egress_counters> Counters(uint32_t) override {
    return egress_counters{};
  }
  absl::StatusOr<std::map<uint32_t, uint64_t>> RuleHits(uint32_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<uint32_t, uint64_t> out;
    for (const auto& [key, n] : rule_hits_) {
      if (key.first == id) out[key.second] = n;
    }
    return out;
  }
  absl::Status DeleteRuleHits(uint32_t id,
                              const std::vector<uint32_t>& rule_ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t rule_id : rule_ids) rule_hits_.erase({id, rule_id});
    return absl::OkStatus();
  }
  absl::StatusOr<UdpPeerReport> UdpPeers(
      const std::vector<uint32_t>& ids) override {
    UdpPeerReport report;
    for (uint32_t id : ids) report.targets[id] = PeerTally{};
    return report;
  }
  absl::StatusOr<egress_dns_counters> DnsCounters(uint32_t) override {
    return egress_dns_counters{};
  }
  absl::StatusOr<DnsSweep> SweepDnsBindings() override { return DnsSweep{}; }
  absl::Status SetUserTarget(uint32_t uid, uint32_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    users_[uid] = id;
    return absl::OkStatus();
  }
  absl::Status DeleteUserTarget(uint32_t uid) override {
    std::lock_guard<std::mutex> lock(mu_);
    users_.erase(uid);
    return absl::OkStatus();
  }
  absl::StatusOr<std::map<uint32_t, uint32_t>> UserTargets() override {
    std::lock_guard<std::mutex> lock(mu_);
    return users_;
  }
  absl::StatusOr<std::string> CgroupPathOf(uint64_t cgroup_id) override;
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
  absl::Status Attach(uint32_t id, uint64_t link_set, const std::string& rel,
                      uint64_t cgroup_id) override;
  LinkHealth Links(uint32_t id, uint64_t link_set, uint64_t cgroup_id) override;
  LinkHealth ReadLinks(uint32_t id, uint64_t link_set,
                       uint64_t cgroup_id) override;
  std::vector<uint64_t> LinkSets(uint32_t id) override;
  bool LinkSetDefunct(uint32_t id, uint64_t link_set) override;
  absl::Status Detach(uint32_t id, uint64_t link_set) override;

  // Watch sets and their maps, kept as the kernel would.
  absl::Status Watch(const std::string& rel, uint64_t parent_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_attach_) return absl::InternalError("attach failed (fake)");
    watched_[parent_id] = rel;
    return absl::OkStatus();
  }
  absl::Status Unwatch(uint64_t parent_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    watched_.erase(parent_id);
    for (auto it = watch_names_.begin(); it != watch_names_.end();) {
      it = it->first.first == parent_id ? watch_names_.erase(it) : ++it;
    }
    return absl::OkStatus();
  }
  std::vector<uint64_t> WatchedParents() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& [id, rel] : watched_) out.push_back(id);
    return out;
  }
  absl::Status SetWatchName(uint64_t parent_id, const std::string& name,
                            uint32_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    watch_names_[{parent_id, name}] = id;
    return absl::OkStatus();
  }
  absl::Status AddWatchName(uint64_t parent_id, const std::string& name,
                            uint32_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!watch_names_.try_emplace({parent_id, name}, id).second) {
      return absl::AlreadyExistsError(name);
    }
    return absl::OkStatus();
  }
  absl::Status DeleteWatchName(uint64_t parent_id,
                               const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    watch_names_.erase({parent_id, name});
    return absl::OkStatus();
  }
  absl::Status SetWatchParent(uint64_t parent_id,
                              const egress_watch_parent& parent) override {
    std::lock_guard<std::mutex> lock(mu_);
    watch_parents_[parent_id] = parent;
    return absl::OkStatus();
  }
  absl::Status DeleteWatchParent(uint64_t parent_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    watch_parents_.erase(parent_id);
    return absl::OkStatus();
  }
  absl::Status SetCgroupClass(uint64_t cgroup_id, uint32_t value) override {
    std::lock_guard<std::mutex> lock(mu_);
    classes_[cgroup_id] = value;
    return absl::OkStatus();
  }
  absl::Status DeleteCgroupClass(uint64_t cgroup_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    classes_.erase(cgroup_id);
    return absl::OkStatus();
  }
  // What the watch sets read: parent id -> path, {parent, name} -> target,
  // cgroup id -> class, parent id -> kind and default.
  std::map<uint64_t, std::string> Watched() const {
    std::lock_guard<std::mutex> lock(mu_);
    return watched_;
  }
  std::map<std::pair<uint64_t, std::string>, uint32_t> WatchNames() const {
    std::lock_guard<std::mutex> lock(mu_);
    return watch_names_;
  }
  std::map<uint64_t, uint32_t> Classes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return classes_;
  }
  std::map<uint64_t, egress_watch_parent> WatchParents() const {
    std::lock_guard<std::mutex> lock(mu_);
    return watch_parents_;
  }

 private:
  bool Live(uint64_t cgroup_id) const;

  mutable std::mutex mu_;
  // Ruleset -> the keys of its entries in every map, each a map letter
  // ('r' rules, 'p' port_classes, 'n' dns_names, 'u' unix_rules, 'x'
  // exact_rules) and the
  // key's bytes: writes and deletes of single entries count as the
  // kernel's do.
  std::map<uint32_t, std::set<std::string>> entries_;
  size_t RuleEntriesLocked() const;
  std::map<uint32_t, egress_target_config> configs_;
  std::set<uint32_t> programs_;
  std::set<uint32_t> stale_;                 // programs reading unpinned maps
  std::map<std::string, uint64_t> cgroups_;  // live ones
  std::map<uint32_t, uint32_t> users_;       // user_targets
  // rule_hits: {target id, rule id} -> decisions.
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> rule_hits_;
  uint64_t next_cgroup_id_ = 100;
  // (target, link set) -> cgroup id the hooks are on.
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> links_;
  int fail_write_at_ = 0;
  size_t rule_capacity_ = EGRESS_MAX_RULE_ENTRIES;
  int write_calls_ = 0;
  bool fail_attach_ = false;
  std::function<void()> on_attach_;
  std::function<void(uint32_t)> on_delete_entries_;
  bool pins_lost_ = false;
  bool fail_repair_ = false;
  int attach_calls_ = 0;
  std::map<uint64_t, std::string> watched_;
  std::map<std::pair<uint64_t, std::string>, uint32_t> watch_names_;
  std::map<uint64_t, uint32_t> classes_;
  std::map<uint64_t, egress_watch_parent> watch_parents_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_UNIT_FAKE_KERNEL_H_
