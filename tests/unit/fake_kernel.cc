#include "tests/unit/fake_kernel.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/policy/policy_file.h"

namespace egress::testing {

using Lock = std::lock_guard<std::mutex>;

uint64_t FakeKernel::MakeCgroup(const std::string& rel) {
  Lock lock(mu_);
  uint64_t id = next_cgroup_id_++;
  cgroups_[rel] = id;
  return id;
}

void FakeKernel::RemoveCgroup(const std::string& rel) {
  Lock lock(mu_);
  cgroups_.erase(rel);
}

bool FakeKernel::Live(uint64_t cgroup_id) const {
  for (const auto& [rel, id] : cgroups_) {
    if (id == cgroup_id) return true;
  }
  return false;
}

uint32_t FakeKernel::ActiveRuleset(uint32_t id) const {
  return Config(id).ruleset;
}

egress_target_config FakeKernel::Config(uint32_t id) const {
  Lock lock(mu_);
  auto it = configs_.find(id);
  return it == configs_.end() ? egress_target_config{} : it->second;
}

std::set<uint32_t> FakeKernel::RulesetsInMaps() const {
  Lock lock(mu_);
  std::set<uint32_t> out;
  for (const auto& [r, n] : entries_) out.insert(r);
  return out;
}

std::map<uint32_t, size_t> FakeKernel::EntriesByRuleset() const {
  Lock lock(mu_);
  std::map<uint32_t, size_t> out;
  for (const auto& [r, keys] : entries_) out[r] = keys.size();
  return out;
}

uint64_t FakeKernel::AttachedTo(uint32_t id, uint64_t link_set) const {
  Lock lock(mu_);
  auto it = links_.find({id, link_set});
  if (it == links_.end() || !Live(it->second)) return 0;
  return it->second;
}

namespace {

template <typename Entries>
void AddKeys(char map, const Entries& entries, std::vector<std::string>* out) {
  for (const auto& [k, v] : entries) {
    out->push_back(map +
                   std::string(reinterpret_cast<const char*>(&k), sizeof(k)));
  }
}

// Every key of a set, rules first (the capacity check counts those).
std::vector<std::string> KeysOf(const policy::CompiledRuleset& set) {
  std::vector<std::string> keys;
  AddKeys('r', set.rules, &keys);
  AddKeys('p', set.ports, &keys);
  AddKeys('n', set.names, &keys);
  AddKeys('u', set.unix_paths, &keys);
  AddKeys('x', set.exact, &keys);
  return keys;
}

}  // namespace

size_t FakeKernel::RuleEntriesLocked() const {
  size_t n = 0;
  for (const auto& [r, keys] : entries_) {
    for (const std::string& k : keys) n += k[0] == 'r';
  }
  return n;
}

absl::Status FakeKernel::WriteEntries(const policy::CompiledRuleset& set) {
  Lock lock(mu_);
  const std::vector<std::string> keys = KeysOf(set);
  std::set<std::string>& held = entries_[set.ruleset];
  if (fail_write_at_ > 0 && --fail_write_at_ == 0) {
    // Part of the set went in before the map filled up.
    if (!keys.empty()) held.insert(keys[0]);
    return absl::ResourceExhaustedError("rules map is full");
  }
  ++write_calls_;
  // The rules map's room: what the rule sets in it hold.
  size_t in_rules = RuleEntriesLocked();
  for (const std::string& k : keys) {
    if (held.count(k)) continue;
    if (k[0] == 'r' && in_rules >= rule_capacity_) {
      return absl::ResourceExhaustedError(
          "bpf_map_update_elem rules: No space left on device");
    }
    in_rules += k[0] == 'r';
    held.insert(k);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> FakeKernel::HasEntries(
    const policy::CompiledRuleset& set) {
  Lock lock(mu_);
  auto it = entries_.find(set.ruleset);
  if (it == entries_.end()) return false;
  const std::vector<std::string> keys = KeysOf(set);
  if (it->second.size() != keys.size()) return false;
  for (const std::string& k : keys) {
    if (!it->second.count(k)) return false;
  }
  return true;
}

absl::StatusOr<std::vector<uint32_t>> FakeKernel::CopiesOf(
    const policy::CompiledRuleset& set) {
  std::vector<uint32_t> copies;
  if (KeysOf(set).empty()) return copies;
  policy::CompiledRuleset copy = set;
  for (const uint32_t ruleset : RulesetsInMaps()) {
    if (ruleset == set.ruleset) continue;
    copy.ruleset = ruleset;
    for (auto& [k, v] : copy.rules) k.ruleset = ruleset;
    for (auto& [k, v] : copy.ports) k.ruleset = ruleset;
    for (auto& [k, v] : copy.exact) k.ruleset = ruleset;
    for (auto& [k, v] : copy.names) k.ruleset = ruleset;
    for (auto& [k, v] : copy.unix_paths) k.ruleset = ruleset;
    if (*HasEntries(copy)) copies.push_back(ruleset);
  }
  return copies;
}

size_t FakeKernel::EntriesPresent(const policy::CompiledRuleset& set) const {
  Lock lock(mu_);
  auto it = entries_.find(set.ruleset);
  if (it == entries_.end()) return 0;
  size_t n = 0;
  for (const std::string& k : KeysOf(set)) n += it->second.count(k);
  return n;
}

absl::Status FakeKernel::DeleteEntries(const policy::CompiledRuleset& set) {
  if (on_delete_entries_) on_delete_entries_(set.ruleset);
  Lock lock(mu_);
  auto it = entries_.find(set.ruleset);
  if (it == entries_.end()) return absl::OkStatus();
  for (const std::string& k : KeysOf(set)) it->second.erase(k);
  if (it->second.empty()) entries_.erase(it);
  return absl::OkStatus();
}

absl::Status FakeKernel::SetTargetConfig(uint32_t id,
                                         const egress_target_config& config) {
  Lock lock(mu_);
  configs_[id] = config;
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> FakeKernel::MaxRulesetInMaps() {
  Lock lock(mu_);
  return entries_.empty() ? 0 : entries_.rbegin()->first;
}

absl::StatusOr<size_t> FakeKernel::DeleteRulesetsExcept(
    const std::set<uint32_t>& keep) {
  Lock lock(mu_);
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    n += it->second.size();
    it = entries_.erase(it);
  }
  return n;
}

bool FakeKernel::ProgramsLoaded(uint32_t id) {
  Lock lock(mu_);
  return !pins_lost_ && programs_.count(id) > 0;
}

absl::Status FakeKernel::LoadPrograms(uint32_t id) {
  Lock lock(mu_);
  if (pins_lost_) return absl::NotFoundError("no bpffs to pin programs in");
  programs_.insert(id);
  return absl::OkStatus();
}

void FakeKernel::MakeProgramsStale(uint32_t id) {
  Lock lock(mu_);
  stale_.insert(id);
}

bool FakeKernel::ProgramsStale(uint32_t id) const {
  Lock lock(mu_);
  return stale_.count(id) > 0;
}

absl::StatusOr<bool> FakeKernel::RefreshPrograms(uint32_t id) {
  Lock lock(mu_);
  if (!programs_.count(id)) return absl::NotFoundError("no programs");
  return stale_.erase(id) > 0;
}

absl::StatusOr<int> FakeKernel::RepairPins() {
  Lock lock(mu_);
  if (!pins_lost_) return 0;
  if (fail_repair_) return absl::PermissionDeniedError("mount bpffs refused");
  pins_lost_ = false;
  return static_cast<int>(programs_.size() + links_.size());
}

absl::Status FakeKernel::RemovePrograms(uint32_t id) {
  Lock lock(mu_);
  programs_.erase(id);
  for (auto it = links_.begin(); it != links_.end();) {
    it = it->first.first == id ? links_.erase(it) : std::next(it);
  }
  return absl::OkStatus();
}

std::vector<uint32_t> FakeKernel::PinnedTargets() {
  Lock lock(mu_);
  return std::vector<uint32_t>(programs_.begin(), programs_.end());
}

absl::StatusOr<egress_target_config> FakeKernel::TargetConfig(uint32_t id) {
  return Config(id);
}

absl::StatusOr<LinkedCgroup> FakeKernel::LinkedCgroupOf(uint32_t id) {
  Lock lock(mu_);
  auto it = links_.find({id, kOwnCgroup});
  if (it != links_.end()) {
    for (const auto& [rel, cgroup_id] : cgroups_) {
      if (cgroup_id == it->second) return LinkedCgroup{rel, cgroup_id};
    }
  }
  return absl::NotFoundError("no link attached");
}

absl::StatusOr<std::string> FakeKernel::CgroupPathOf(uint64_t cgroup_id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [rel, id] : cgroups_) {
    if (id == cgroup_id) return rel;
  }
  return absl::NotFoundError("no such cgroup");
}

absl::StatusOr<uint64_t> FakeKernel::CgroupId(const std::string& rel) {
  Lock lock(mu_);
  auto it = cgroups_.find(rel);
  if (it == cgroups_.end()) {
    return absl::NotFoundError(absl::StrCat("no cgroup ", rel));
  }
  return it->second;
}

CgroupMatches FakeKernel::MatchCgroups(const std::string& pattern) {
  Lock lock(mu_);
  CgroupMatches m;
  for (const auto& [rel, id] : cgroups_) {
    if (policy::CgroupPatternMatches(pattern, rel)) m.cgroups.push_back(rel);
  }
  m.watch_dirs.push_back(pattern.substr(0, pattern.rfind('/')));
  return m;
}

std::vector<std::string> FakeKernel::ChildCgroups(const std::string& rel) {
  Lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [path, id] : cgroups_) {
    std::string prefix = rel == "/" ? "/" : rel + "/";
    if (absl::StartsWith(path, prefix) &&
        path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(path.substr(prefix.size()));
    }
  }
  return out;
}

absl::Status FakeKernel::Attach(uint32_t id, uint64_t link_set,
                                const std::string& rel, uint64_t cgroup_id) {
  if (on_attach_) on_attach_();
  Lock lock(mu_);
  ++attach_calls_;
  if (fail_attach_) return absl::PermissionDeniedError("attach refused");
  if (pins_lost_) return absl::NotFoundError("program pins missing");
  if (!programs_.count(id)) return absl::NotFoundError("no programs");
  auto it = cgroups_.find(rel);
  if (it == cgroups_.end() || it->second != cgroup_id) {
    return absl::NotFoundError("cgroup gone");
  }
  links_[{id, link_set}] = cgroup_id;
  return absl::OkStatus();
}

LinkHealth FakeKernel::Links(uint32_t id, uint64_t link_set,
                             uint64_t cgroup_id) {
  Lock lock(mu_);
  auto it = links_.find({id, link_set});
  LinkHealth h;
  h.total = kHooks;
  if (it == links_.end()) return h;
  h.attached = Live(it->second) ? kHooks : 0;
  h.live = it->second == cgroup_id && Live(cgroup_id) ? kHooks : 0;
  return h;
}

// Links() changes nothing here: the same reading.
LinkHealth FakeKernel::ReadLinks(uint32_t id, uint64_t link_set,
                                 uint64_t cgroup_id) {
  return Links(id, link_set, cgroup_id);
}

std::vector<uint64_t> FakeKernel::LinkSets(uint32_t id) {
  Lock lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [key, cg] : links_) {
    if (key.first == id && key.second != kOwnCgroup) out.push_back(key.second);
  }
  return out;
}

bool FakeKernel::LinkSetDefunct(uint32_t id, uint64_t link_set) {
  Lock lock(mu_);
  auto it = links_.find({id, link_set});
  return it == links_.end() || !Live(it->second);
}

absl::Status FakeKernel::Detach(uint32_t id, uint64_t link_set) {
  Lock lock(mu_);
  links_.erase({id, link_set});
  return absl::OkStatus();
}

}  // namespace egress::testing
