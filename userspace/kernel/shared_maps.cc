#include "userspace/kernel/shared_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"
#include "userspace/kernel/libbpf_ptr.h"
#include "userspace/kernel/map_walk.h"

namespace egress {
namespace {

// Sets of at least this many port-class and rule entries are written on two
// threads (WriteEntries); below it a thread costs more than it saves.
constexpr size_t kWriteBesideFrom = 8192;

absl::StatusOr<UniqueFd> OpenPinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return ErrnoStatus(errno, "bpf_obj_get", path);
  return UniqueFd(fd);
}

// Deletes `keys` from the map `fd`; returns how many it deleted (a key
// already gone, an LRU eviction, is no error and not counted).
template <typename Key>
absl::StatusOr<size_t> DeleteKeys(int fd, const std::vector<Key>& keys,
                                  absl::string_view name) {
  size_t deleted = 0;
  for (const Key& k : keys) {
    if (bpf_map_delete_elem(fd, &k) == 0) {
      ++deleted;
    } else if (errno != ENOENT) {
      return ErrnoStatus(errno, "bpf_map_delete_elem", name);
    }
  }
  return deleted;
}

// DeleteKeys in batches (a system call per kBatch keys): a key already gone
// stops a batch (ENOENT) after the keys before it, and the rest goes in the
// next one. A map with no batch delete (older kernels): DeleteKeys.
template <typename Key>
absl::StatusOr<size_t> DeleteKeysBatched(int fd, const std::vector<Key>& keys,
                                         absl::string_view name) {
  constexpr size_t kBatch = 4096;
  size_t deleted = 0;
  size_t at = 0;
  while (at < keys.size()) {
    const size_t n = std::min(kBatch, keys.size() - at);
    uint32_t count = static_cast<uint32_t>(n);
    if (bpf_map_delete_batch(fd, &keys[at], &count, nullptr) == 0) {
      deleted += n;
      at += n;
      continue;
    }
    const int e = errno;
    if (e == ENOENT && count < n) {
      deleted += count;
      at += count + 1;  // past the missing key
      continue;
    }
    if (e == EINVAL || e == EOPNOTSUPP || e == 524 /* ENOTSUPP */) {
      std::vector<Key> rest(keys.begin() + static_cast<ptrdiff_t>(at),
                            keys.end());
      EGRESS_ASSIGN_OR_RETURN(size_t more, DeleteKeys(fd, rest, name));
      return deleted + more;
    }
    return ErrnoStatus(e, "bpf_map_delete_batch", name);
  }
  return deleted;
}

// Deletes every key of the map `fd` for which `doomed(key)` holds and
// returns how many. Keys are collected first: deleting while walking would
// restart the walk. A key already gone (an LRU eviction) is not an error.
template <typename Key, typename Pred>
absl::StatusOr<size_t> DeleteKeysWhere(int fd, Pred doomed,
                                       absl::string_view name) {
  std::vector<Key> keys;
  EGRESS_RETURN_IF_ERROR(ForEachKeyBatched<Key>(fd, [&](const Key& k) {
                           if (doomed(k)) keys.push_back(k);
                         }).status());
  return DeleteKeysBatched(fd, keys, name);
}

// Deletes every key of a rule map whose ruleset is not kept; a map whose
// `tallies` name only kept rulesets is not walked.
template <typename Key>
absl::StatusOr<size_t> SweepRulesets(int fd, const std::set<uint32_t>& keep,
                                     const RulesetTallies& tallies,
                                     absl::string_view name) {
  bool any = false;
  for (const auto& [ruleset, tally] : tallies) {
    if (!keep.contains(ruleset)) any = true;
  }
  if (!any) return 0;
  return DeleteKeysWhere<Key>(
      fd, [&keep](const Key& k) { return !keep.count(k.ruleset); }, name);
}

// Deletes every entry of one target (a map keyed by target_id first).
template <typename Key>
absl::Status DeleteTargetKeys(int fd, uint32_t target_id,
                              absl::string_view name) {
  return DeleteKeysWhere<Key>(
             fd, [target_id](const Key& k) { return k.target_id == target_id; },
             name)
      .status();
}

template <typename Entries>
absl::Status UpdateAll(int fd, const Entries& entries, absl::string_view name) {
  for (const auto& [key, value] : entries) {
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
      return ErrnoStatus(errno, "bpf_map_update_elem", name);
    }
  }
  return absl::OkStatus();
}

template <typename Entries>
absl::Status DeleteAll(int fd, const Entries& entries, absl::string_view name) {
  for (const auto& entry : entries) {
    if (bpf_map_delete_elem(fd, &entry.first) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "bpf_map_delete_elem", name);
    }
  }
  return absl::OkStatus();
}

// UpdateAll for a hash map: the entries go in batches, a system call per
// kBatch entries instead of one each.
template <typename Entries>
absl::Status UpdateBatched(int fd, const Entries& entries,
                           absl::string_view name) {
  using Key = typename Entries::value_type::first_type;
  using Value = typename Entries::value_type::second_type;
  constexpr size_t kBatch = 4096;
  std::vector<Key> keys;
  std::vector<Value> values;
  for (size_t at = 0; at < entries.size(); at += kBatch) {
    const size_t n = std::min(kBatch, entries.size() - at);
    keys.resize(n);
    values.resize(n);
    for (size_t i = 0; i < n; ++i) {
      keys[i] = entries[at + i].first;
      values[i] = entries[at + i].second;
    }
    uint32_t count = static_cast<uint32_t>(n);
    if (bpf_map_update_batch(fd, keys.data(), values.data(), &count, nullptr) !=
        0) {
      return ErrnoStatus(errno, "bpf_map_update_batch", name);
    }
  }
  return absl::OkStatus();
}

// DeleteAll for a hash map, in batches (DeleteKeysBatched: a key already
// gone is skipped, a kernel without batch delete gets one call per key).
template <typename Entries>
absl::Status DeleteBatched(int fd, const Entries& entries,
                           absl::string_view name) {
  using Key = typename Entries::value_type::first_type;
  std::vector<Key> keys;
  keys.reserve(entries.size());
  for (const auto& entry : entries) keys.push_back(entry.first);
  return DeleteKeysBatched(fd, keys, name).status();
}

// One entry's share of its ruleset's RulesetTally::digest. Keys and values
// are the abi.h structs with every padding byte zeroed (policy::Compile), so
// the bytes the kernel hands back are the bytes written. The key's ruleset
// is left out (hashed as 0): a tally is kept per ruleset already, so it
// adds nothing there, and without it a set's copy under another id (a
// spare) has the same digest (CopiesOf). No value carries a ruleset.
template <typename Key, typename Value>
uint64_t EntryDigest(Key key, const Value& value) {
  key.ruleset = 0;
  return absl::HashOf(
      absl::string_view(reinterpret_cast<const char*>(&key), sizeof(key)),
      absl::string_view(reinterpret_cast<const char*>(&value), sizeof(value)));
}

// The tally of each ruleset in a rule map, from one batched walk.
template <typename Key, typename Value>
absl::StatusOr<RulesetTallies> TallyRulesets(int fd) {
  RulesetTallies tallies;
  EGRESS_RETURN_IF_ERROR(
      (ForEachEntryBatched<Key, Value>(fd, [&](const Key& k, const Value& v) {
         RulesetTally& t = tallies[k.ruleset];
         ++t.count;
         t.digest += EntryDigest(k, v);
       }).status()));
  return tallies;
}

// The tally a compiled set's entries make in their map.
template <typename Entries>
RulesetTally TallyOf(const Entries& entries) {
  RulesetTally t;
  for (const auto& [key, value] : entries) {
    ++t.count;
    t.digest += EntryDigest(key, value);
  }
  return t;
}

RulesetTally TallyIn(const RulesetTallies& tallies, uint32_t ruleset) {
  auto it = tallies.find(ruleset);
  return it == tallies.end() ? RulesetTally{} : it->second;
}

// A compiled set's tally in each rule map, and whether the maps' tallies
// (SharedMaps::RulesetCounts) hold exactly it under a ruleset id: what
// HasEntries asks of the set's own id and CopiesOf of every other.
struct SetTallies {
  RulesetTally rules, ports, exact, unix_paths, names;

  static SetTallies Of(const policy::CompiledRuleset& c) {
    return {TallyOf(c.rules), TallyOf(c.ports), TallyOf(c.exact),
            TallyOf(c.unix_paths), TallyOf(c.names)};
  }
  template <typename Counts>
  bool HeldAs(const Counts& counts, uint32_t ruleset) const {
    return TallyIn(counts.rules, ruleset) == rules &&
           TallyIn(counts.ports, ruleset) == ports &&
           TallyIn(counts.exact, ruleset) == exact &&
           TallyIn(counts.unix_paths, ruleset) == unix_paths &&
           TallyIn(counts.names, ruleset) == names;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SharedMaps>> SharedMaps::OpenOrCreate(
    const std::string& maps_dir) {
  // Loading the object with every program disabled creates (or reuses) and
  // pins exactly the maps, nothing else.
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps_dir.c_str());
  SkeletonPtr skel(egress_bpf__open_opts(&opts));
  if (!skel) return ErrnoStatus(errno, "open BPF object", "egress_bpf");
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    bpf_program__set_autoload(prog, false);
  }
  if (int err = egress_bpf__load(skel.get()); err != 0) {
    return ErrnoStatus(-err, "create or reuse pinned maps in", maps_dir);
  }
  auto maps = std::unique_ptr<SharedMaps>(new SharedMaps());
  maps->dir_ = maps_dir;
  for (auto [name, fd] : All(*maps)) {
    EGRESS_ASSIGN_OR_RETURN(*fd, OpenPinned(absl::StrCat(maps_dir, "/", name)));
  }
  return maps;
}

absl::StatusOr<int> SharedMaps::PinMissing() {
  int pinned = 0;
  for (auto [name, fd] : All(*this)) {
    std::string path = absl::StrCat(dir_, "/", name);
    if (access(path.c_str(), F_OK) == 0) continue;
    if (pinned == 0) EGRESS_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
    if (bpf_obj_pin(fd->get(), path.c_str()) != 0) {
      return ErrnoStatus(errno, "bpf_obj_pin", path);
    }
    ++pinned;
  }
  return pinned;
}

absl::StatusOr<MapIds> SharedMaps::Ids() const {
  MapIds ids;
  for (auto [name, fd] : All(*this)) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0) {
      return ErrnoStatus(errno, "bpf_obj_get_info_by_fd", name);
    }
    ids[name] = info.id;
  }
  return ids;
}

int SharedMaps::FdOf(absl::string_view map) const {
  if (map == "targets") return targets_.get();
  if (map == "port_classes") return port_classes_.get();
  if (map == "rules") return rules_.get();
  if (map == "unix_rules") return unix_rules_.get();
  if (map == "exact_rules") return exact_rules_.get();
  if (map == "udp_peers") return udp_peers_.get();
  if (map == "counters") return counters_.get();
  if (map == "dns_queries") return dns_queries_.get();
  if (map == "dns_names") return dns_names_.get();
  if (map == "dns_bindings") return dns_bindings_.get();
  return -1;
}

absl::Status SharedMaps::SetTargetConfig(uint32_t target_id,
                                         const egress_target_config& config) {
  if (bpf_map_update_elem(targets_.get(), &target_id, &config, BPF_ANY) != 0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", "targets");
  }
  return absl::OkStatus();
}

absl::StatusOr<egress_target_config> SharedMaps::TargetConfig(
    uint32_t target_id) const {
  egress_target_config config{};
  if (bpf_map_lookup_elem(targets_.get(), &target_id, &config) != 0) {
    return ErrnoStatus(errno, "bpf_map_lookup_elem", "targets");
  }
  return config;
}

absl::Status SharedMaps::SetUserTarget(uint32_t uid, uint32_t target_id) {
  if (bpf_map_update_elem(user_targets_.get(), &uid, &target_id, BPF_ANY) !=
      0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", "user_targets");
  }
  return absl::OkStatus();
}

absl::Status SharedMaps::DeleteUserTarget(uint32_t uid) {
  if (bpf_map_delete_elem(user_targets_.get(), &uid) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "bpf_map_delete_elem", "user_targets");
  }
  return absl::OkStatus();
}

namespace {

absl::Status Update(int fd, const void* key, const void* value,
                    absl::string_view name, uint64_t flags = BPF_ANY) {
  if (bpf_map_update_elem(fd, key, value, flags) != 0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", name);
  }
  return absl::OkStatus();
}

absl::Status Delete(int fd, const void* key, absl::string_view name) {
  if (bpf_map_delete_elem(fd, key) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "bpf_map_delete_elem", name);
  }
  return absl::OkStatus();
}

egress_watch_key WatchKey(uint64_t parent_cgroup_id, const std::string& name) {
  egress_watch_key key{};
  key.parent_cgroup_id = parent_cgroup_id;
  name.copy(key.name, sizeof(key.name) - 1);
  return key;
}

// The key of a name egressd is about to watch: a name the kernel would cut
// short could match a different child, so it is refused instead.
absl::StatusOr<egress_watch_key> CheckedWatchKey(uint64_t parent_cgroup_id,
                                                 const std::string& name) {
  if (name.empty() || name.size() >= EGRESS_WATCH_NAME_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup name ", name, " cannot be watched: 1 to ",
                     EGRESS_WATCH_NAME_MAX - 1, " bytes"));
  }
  return WatchKey(parent_cgroup_id, name);
}

// watch_names[{parent, name}] = target id, with the update's `flags`
// (BPF_ANY to set, BPF_NOEXIST to add only).
absl::Status WriteWatchName(int fd, uint64_t parent_cgroup_id,
                            const std::string& name, uint32_t target_id,
                            uint64_t flags) {
  absl::StatusOr<egress_watch_key> key =
      CheckedWatchKey(parent_cgroup_id, name);
  if (!key.ok()) return key.status();
  return Update(fd, &*key, &target_id, "watch_names", flags);
}

}  // namespace

absl::Status SharedMaps::SetWatchName(uint64_t parent_cgroup_id,
                                      const std::string& name,
                                      uint32_t target_id) {
  return WriteWatchName(watch_names_.get(), parent_cgroup_id, name, target_id,
                        BPF_ANY);
}

absl::Status SharedMaps::AddWatchName(uint64_t parent_cgroup_id,
                                      const std::string& name,
                                      uint32_t target_id) {
  return WriteWatchName(watch_names_.get(), parent_cgroup_id, name, target_id,
                        BPF_NOEXIST);
}

absl::Status SharedMaps::DeleteWatchName(uint64_t parent_cgroup_id,
                                         const std::string& name) {
  egress_watch_key key = WatchKey(parent_cgroup_id, name);
  return Delete(watch_names_.get(), &key, "watch_names");
}

absl::Status SharedMaps::DeleteWatchNamesOf(uint64_t parent_cgroup_id) {
  // Collected first: a walk must not delete from the map it walks.
  std::vector<egress_watch_key> keys;
  EGRESS_RETURN_IF_ERROR(
      ForEachKey<egress_watch_key>(watch_names_.get(),
                                   [&](const egress_watch_key& k) {
                                     if (k.parent_cgroup_id == parent_cgroup_id)
                                       keys.push_back(k);
                                   })
          .status());
  for (const egress_watch_key& k : keys) {
    EGRESS_RETURN_IF_ERROR(Delete(watch_names_.get(), &k, "watch_names"));
  }
  return absl::OkStatus();
}

absl::Status SharedMaps::SetWatchParent(uint64_t parent_cgroup_id,
                                        const egress_watch_parent& parent) {
  return Update(watch_parents_.get(), &parent_cgroup_id, &parent,
                "watch_parents");
}

absl::Status SharedMaps::DeleteWatchParent(uint64_t parent_cgroup_id) {
  return Delete(watch_parents_.get(), &parent_cgroup_id, "watch_parents");
}

absl::Status SharedMaps::SetAttachTarget(uint64_t cgroup_id,
                                         uint32_t target_id) {
  if (bpf_map_update_elem(attach_target_.get(), &cgroup_id, &target_id,
                          BPF_EXIST) != 0) {
    return ErrnoStatus(errno, "write the target id of cgroup",
                       absl::StrCat(cgroup_id, " into attach_target"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> SharedMaps::AttachTarget(uint64_t cgroup_id) const {
  uint32_t id = 0;
  if (bpf_map_lookup_elem(attach_target_.get(), &cgroup_id, &id) != 0) {
    return ErrnoStatus(errno, "read attach_target of cgroup",
                       absl::StrCat(cgroup_id));
  }
  return id;
}

absl::Status SharedMaps::AdoptAttachTarget(UniqueFd live) {
  std::string path = absl::StrCat(dir_, "/attach_target");
  std::string staged = path + "_new";
  unlink(staged.c_str());
  if (bpf_obj_pin(live.get(), staged.c_str()) != 0) {
    return ErrnoStatus(errno, "bpf_obj_pin", staged);
  }
  if (rename(staged.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(staged.c_str());
    return ErrnoStatus(err, "rename pin", path);
  }
  attach_target_ = std::move(live);
  return absl::OkStatus();
}

absl::Status SharedMaps::SetCgroupClass(uint64_t cgroup_id, uint32_t value) {
  return Update(cgroup_classes_.get(), &cgroup_id, &value, "cgroup_classes");
}

absl::Status SharedMaps::DeleteCgroupClass(uint64_t cgroup_id) {
  return Delete(cgroup_classes_.get(), &cgroup_id, "cgroup_classes");
}

absl::StatusOr<std::map<uint64_t, uint32_t>> SharedMaps::CgroupClasses() const {
  std::vector<uint64_t> ids;
  EGRESS_RETURN_IF_ERROR(
      ForEachKey<uint64_t>(cgroup_classes_.get(), [&ids](const uint64_t& id) {
        ids.push_back(id);
      }).status());
  std::map<uint64_t, uint32_t> out;
  for (uint64_t id : ids) {
    uint32_t v = 0;
    if (bpf_map_lookup_elem(cgroup_classes_.get(), &id, &v) == 0) out[id] = v;
  }
  return out;
}

absl::StatusOr<std::map<uint32_t, uint32_t>> SharedMaps::UserTargets() const {
  std::vector<uint32_t> uids;
  EGRESS_RETURN_IF_ERROR(
      ForEachKey<uint32_t>(user_targets_.get(), [&uids](const uint32_t& uid) {
        uids.push_back(uid);
      }).status());
  std::map<uint32_t, uint32_t> out;
  for (uint32_t uid : uids) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(user_targets_.get(), &uid, &id) == 0) out[uid] = id;
  }
  return out;
}

absl::Status SharedMaps::WriteEntries(const policy::CompiledRuleset& c) {
  ForgetCounts();
  // A large set spends its write inside the kernel's trie inserts, and each
  // trie has its own lock: the port classes go on a second thread while the
  // rules are written here (100,000 rules: 45,000 + 105,000 entries). No
  // lookup reads a set while it is written (a staged set or a spare), so
  // the order between the tries is free.
  absl::Status ports;
  std::optional<std::thread> beside;
  if (c.ports.size() + c.rules.size() >= kWriteBesideFrom) {
    beside.emplace([&] {
      ports = UpdateAll(port_classes_.get(), c.ports, "port_classes");
    });
  } else {
    ports = UpdateAll(port_classes_.get(), c.ports, "port_classes");
  }
  absl::Status rules;  // `ports` is the other thread's until the join
  if (beside || ports.ok()) rules = UpdateAll(rules_.get(), c.rules, "rules");
  absl::Status exact;
  if (rules.ok())
    exact = UpdateBatched(exact_rules_.get(), c.exact, "exact_rules");
  if (beside) beside->join();
  EGRESS_RETURN_IF_ERROR(ports);
  EGRESS_RETURN_IF_ERROR(rules);
  EGRESS_RETURN_IF_ERROR(exact);
  EGRESS_RETURN_IF_ERROR(UpdateAll(dns_names_.get(), c.names, "dns_names"));
  return UpdateAll(unix_rules_.get(), c.unix_paths, "unix_rules");
}

absl::Status SharedMaps::DeleteEntries(const policy::CompiledRuleset& c) {
  ForgetCounts();
  EGRESS_RETURN_IF_ERROR(DeleteAll(rules_.get(), c.rules, "rules"));
  EGRESS_RETURN_IF_ERROR(
      DeleteBatched(exact_rules_.get(), c.exact, "exact_rules"));
  EGRESS_RETURN_IF_ERROR(
      DeleteAll(unix_rules_.get(), c.unix_paths, "unix_rules"));
  EGRESS_RETURN_IF_ERROR(DeleteAll(dns_names_.get(), c.names, "dns_names"));
  return DeleteAll(port_classes_.get(), c.ports, "port_classes");
}

absl::StatusOr<SharedMaps::RulesetCounts> SharedMaps::CountsByRuleset() const {
  std::lock_guard<std::mutex> lock(counts_mu_);
  const absl::Time now = absl::Now();
  if (counts_ && now - counts_->taken < kRulesetCountsFor) return *counts_;
  RulesetCounts c;
  c.taken = now;
  EGRESS_ASSIGN_OR_RETURN(
      c.rules,
      (TallyRulesets<egress_rule_key, egress_rule_value>(rules_.get())));
  EGRESS_ASSIGN_OR_RETURN(
      c.ports,
      (TallyRulesets<egress_port_key, egress_port_value>(port_classes_.get())));
  EGRESS_ASSIGN_OR_RETURN(
      c.exact,
      (TallyRulesets<egress_exact_key, egress_rule_value>(exact_rules_.get())));
  EGRESS_ASSIGN_OR_RETURN(
      c.unix_paths,
      (TallyRulesets<egress_unix_key, egress_rule_value>(unix_rules_.get())));
  EGRESS_ASSIGN_OR_RETURN(
      c.names, (TallyRulesets<egress_dns_name_key, egress_dns_name_value>(
                   dns_names_.get())));
  counts_ = c;
  return c;
}

void SharedMaps::ForgetCounts() const {
  std::lock_guard<std::mutex> lock(counts_mu_);
  counts_.reset();
}

absl::StatusOr<bool> SharedMaps::HasEntries(
    const policy::CompiledRuleset& c) const {
  // Exactly the set's entries, none more: an LPM lookup answers with the
  // longest prefix that matches, so an extra or missing entry could change
  // an answer.
  EGRESS_ASSIGN_OR_RETURN(RulesetCounts counts, CountsByRuleset());
  return SetTallies::Of(c).HeldAs(counts, c.ruleset);
}

absl::StatusOr<std::vector<uint32_t>> SharedMaps::CopiesOf(
    const policy::CompiledRuleset& c) const {
  const SetTallies set = SetTallies::Of(c);
  const auto& [rules, ports, exact, unix_paths, names] = set;
  std::vector<uint32_t> copies;
  // A set of no entries has no copy to tell apart from no set at all.
  if (rules.count + ports.count + exact.count + unix_paths.count +
          names.count ==
      0) {
    return copies;
  }
  EGRESS_ASSIGN_OR_RETURN(RulesetCounts counts, CountsByRuleset());
  // A copy has entries in every map the set has: the candidates are the
  // rulesets of one such map.
  const RulesetTallies& from = rules.count > 0   ? counts.rules
                               : ports.count > 0 ? counts.ports
                               : exact.count > 0 ? counts.exact
                               : names.count > 0 ? counts.names
                                                 : counts.unix_paths;
  for (const auto& [ruleset, tally] : from) {
    if (ruleset != c.ruleset && set.HeldAs(counts, ruleset)) {
      copies.push_back(ruleset);
    }
  }
  return copies;
}

absl::StatusOr<size_t> SharedMaps::DeleteRulesetsExcept(
    const std::set<uint32_t>& keep) {
  EGRESS_ASSIGN_OR_RETURN(RulesetCounts counts, CountsByRuleset());
  ForgetCounts();
  EGRESS_ASSIGN_OR_RETURN(
      size_t r, SweepRulesets<egress_rule_key>(rules_.get(), keep, counts.rules,
                                               "rules"));
  EGRESS_ASSIGN_OR_RETURN(
      size_t p, SweepRulesets<egress_port_key>(port_classes_.get(), keep,
                                               counts.ports, "port_classes"));
  EGRESS_ASSIGN_OR_RETURN(
      size_t x, SweepRulesets<egress_exact_key>(exact_rules_.get(), keep,
                                                counts.exact, "exact_rules"));
  EGRESS_ASSIGN_OR_RETURN(
      size_t u, SweepRulesets<egress_unix_key>(
                    unix_rules_.get(), keep, counts.unix_paths, "unix_rules"));
  EGRESS_ASSIGN_OR_RETURN(
      size_t n, SweepRulesets<egress_dns_name_key>(dns_names_.get(), keep,
                                                   counts.names, "dns_names"));
  return r + p + x + u + n;
}

absl::StatusOr<uint32_t> SharedMaps::MaxRulesetInMaps() const {
  EGRESS_ASSIGN_OR_RETURN(RulesetCounts counts, CountsByRuleset());
  uint32_t max = 0;
  for (const RulesetTallies* map : {&counts.rules, &counts.ports, &counts.exact,
                                    &counts.unix_paths, &counts.names}) {
    if (!map->empty()) max = std::max(max, map->rbegin()->first);
  }
  return max;
}

absl::StatusOr<egress_counters> SharedMaps::Counters(uint32_t target_id) const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, "libbpf_num_possible_cpus");
  std::vector<egress_counters> per_cpu(ncpu);
  if (bpf_map_lookup_elem(counters_.get(), &target_id, per_cpu.data()) != 0) {
    return ErrnoStatus(errno, "bpf_map_lookup_elem", "counters");
  }
  egress_counters sum{};
  for (const egress_counters& c : per_cpu) {
    sum.sockets_denied += c.sockets_denied;
    sum.srcroute_denied += c.srcroute_denied;
    sum.events_lost += c.events_lost;
    sum.events_suppressed += c.events_suppressed;
    for (int k = 0; k < EGRESS_CTR_KINDS; ++k) {
      for (int p = 0; p < EGRESS_CTR_PROTOS; ++p) {
        sum.by_proto[k][p] += c.by_proto[k][p];
      }
    }
    sum.flows_opened += c.flows_opened;
    sum.flows_closed += c.flows_closed;
    sum.flows_unexplained += c.flows_unexplained;
    sum.flow_bytes_sent += c.flow_bytes_sent;
    sum.flow_bytes_received += c.flow_bytes_received;
    sum.peers_recorded += c.peers_recorded;
    sum.peers_not_recorded += c.peers_not_recorded;
    sum.rule_hits_not_counted += c.rule_hits_not_counted;
  }
  // The totals are derived: BPF counts each decision once, by protocol.
  for (int p = 0; p < EGRESS_CTR_PROTOS; ++p) {
    sum.allowed += sum.by_proto[EGRESS_CTR_ALLOWED][p];
    sum.denied += sum.by_proto[EGRESS_CTR_DENIED][p];
    sum.audited += sum.by_proto[EGRESS_CTR_AUDITED][p];
    sum.replies += sum.by_proto[EGRESS_CTR_REPLIES][p];
  }
  // by_proto's denials include refused sockets and source routes, which
  // have counters of their own.
  sum.denied -= std::min(sum.denied, sum.sockets_denied + sum.srcroute_denied);
  return sum;
}

absl::StatusOr<std::map<uint32_t, uint64_t>> SharedMaps::RuleHits(
    uint32_t target_id) const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, "libbpf_num_possible_cpus");
  std::map<uint32_t, uint64_t> hits;
  std::vector<uint64_t> per_cpu(ncpu);
  auto add = [&](const egress_rule_hit_key& k) {
    // A key evicted since the walk found it has no hits to report.
    if (k.target_id != target_id ||
        bpf_map_lookup_elem(rule_hits_.get(), &k, per_cpu.data()) != 0) {
      return;
    }
    uint64_t sum = 0;
    for (uint64_t v : per_cpu) sum += v;
    hits[k.rule_id] = sum;
  };
  EGRESS_RETURN_IF_ERROR(
      ForEachKey<egress_rule_hit_key>(rule_hits_.get(), add).status());
  return hits;
}

absl::Status SharedMaps::DeleteRuleHits(uint32_t target_id,
                                        const std::vector<uint32_t>& rule_ids) {
  for (uint32_t rule_id : rule_ids) {
    const egress_rule_hit_key k{target_id, rule_id};
    if (bpf_map_delete_elem(rule_hits_.get(), &k) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "bpf_map_delete_elem", "rule_hits");
    }
  }
  return absl::OkStatus();
}

absl::Status SharedMaps::ResetCounters(uint32_t target_id) {
  std::lock_guard<std::mutex> peers_lock(peers_mu_);
  // The id's peers recorded so far are no longer counted: its evictions
  // go to the total, and the next look starts from zero.
  evictions_.Reset(target_id);
  peers_taken_.reset();
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, "libbpf_num_possible_cpus");
  std::vector<egress_counters> zero(ncpu);
  if (bpf_map_update_elem(counters_.get(), &target_id, zero.data(), BPF_ANY) !=
      0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", "counters");
  }
  std::vector<egress_dns_counters> dns_zero(ncpu);
  if (bpf_map_update_elem(dns_counters_.get(), &target_id, dns_zero.data(),
                          BPF_ANY) != 0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", "dns_counters");
  }
  // A new target with a recycled id starts from no rule hits.
  return DeleteTargetKeys<egress_rule_hit_key>(rule_hits_.get(), target_id,
                                               "rule_hits");
}

absl::Status SharedMaps::DeletePeers(uint32_t target_id) {
  EGRESS_RETURN_IF_ERROR(DeleteTargetKeys<egress_dns_query_key>(
      dns_queries_.get(), target_id, "dns_queries"));
  EGRESS_RETURN_IF_ERROR(DeleteTargetKeys<egress_dns_binding_key>(
      dns_bindings_.get(), target_id, "dns_bindings"));
  absl::Status peers = DeletePeerEntries(target_id);
  // After the deletes, and also when one failed part way: a cache that
  // vouches for a peer must never outlive the entry it vouches for.
  uint32_t gen = 0;
  if (bpf_map_lookup_elem(peer_gens_.get(), &target_id, &gen) != 0) {
    return ErrnoStatus(errno, "bpf_map_lookup_elem", "peer_gens");
  }
  ++gen;
  if (bpf_map_update_elem(peer_gens_.get(), &target_id, &gen, BPF_ANY) != 0) {
    return ErrnoStatus(errno, "bpf_map_update_elem", "peer_gens");
  }
  return peers;
}

absl::Status SharedMaps::DeletePeerEntries(uint32_t target_id) {
  std::lock_guard<std::mutex> peers_lock(peers_mu_);
  peers_taken_.reset();
  // The counters before the walk, as a look reads them: an entry recorded
  // after this read and deleted below can only make the evictions smaller.
  // Unread, they leave the id's figures as they were; the peers go all the
  // same.
  absl::StatusOr<egress_counters> before = Counters(target_id);
  std::vector<egress_peer_key> keys;
  EGRESS_RETURN_IF_ERROR(
      ForEachKeyBatched<egress_peer_key>(udp_peers_.get(),
                                         [&](const egress_peer_key& k) {
                                           if (k.target_id == target_id) {
                                             keys.push_back(k);
                                           }
                                         })
          .status());
  // A key the LRU took between the walk and its delete is an eviction
  // (DeleteKeys does not count it).
  absl::StatusOr<size_t> deleted =
      DeleteKeys(udp_peers_.get(), keys, "udp_peers");
  if (!deleted.ok()) {
    // Some deleted, uncounted: the figures of the id would be wrong. Its
    // evictions so far stay what they were.
    return deleted.status();
  }
  evictions_.Deleted(target_id, *deleted);
  // Nothing of the target is left but what its hooks recorded after the
  // walk, which `before` does not count either.
  if (before.ok()) {
    evictions_.Observe(target_id, before->peers_recorded,
                       before->peers_not_recorded, 0);
  }
  return absl::OkStatus();
}

absl::StatusOr<UdpPeerReport> SharedMaps::UdpPeers(
    const std::vector<uint32_t>& ids, absl::Duration max_age) {
  std::lock_guard<std::mutex> peers_lock(peers_mu_);
  const bool covered = std::all_of(ids.begin(), ids.end(), [this](uint32_t id) {
    return peers_ids_.count(id) > 0;
  });
  if (peers_taken_ && covered && absl::Now() - *peers_taken_ < max_age) {
    UdpPeerReport report;
    for (uint32_t id : ids) report.targets[id] = evictions_.Of(id);
    report.evicted_total = evictions_.TotalEvicted();
    return report;
  }
  return LookAtPeersLocked(ids);
}

absl::StatusOr<UdpPeerReport> SharedMaps::LookAtPeersLocked(
    const std::vector<uint32_t>& ids) {
  const absl::Time taken = absl::Now();
  // Counters first, then the walk (PeerEvictions).
  std::map<uint32_t, egress_counters> counters;
  for (uint32_t id : ids) {
    EGRESS_ASSIGN_OR_RETURN(counters[id], Counters(id));
  }
  std::map<uint32_t, uint64_t> live;
  for (uint32_t id : ids) live[id] = 0;
  EGRESS_RETURN_IF_ERROR(
      ForEachKeyBatched<egress_peer_key>(udp_peers_.get(),
                                         [&](const egress_peer_key& k) {
                                           auto it = live.find(k.target_id);
                                           if (it != live.end()) ++it->second;
                                         })
          .status());
  UdpPeerReport report;
  for (const auto& [id, c] : counters) {
    report.targets[id] = evictions_.Observe(id, c.peers_recorded,
                                            c.peers_not_recorded, live[id]);
  }
  report.evicted_total = evictions_.TotalEvicted();
  peers_taken_ = taken;
  peers_ids_ = std::set<uint32_t>(ids.begin(), ids.end());
  return report;
}

absl::StatusOr<egress_dns_counters> SharedMaps::DnsCounters(
    uint32_t target_id) const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, "libbpf_num_possible_cpus");
  std::vector<egress_dns_counters> per_cpu(ncpu);
  if (bpf_map_lookup_elem(dns_counters_.get(), &target_id, per_cpu.data()) !=
      0) {
    return ErrnoStatus(errno, "bpf_map_lookup_elem", "dns_counters");
  }
  // The struct is all u64 counters: sum it word by word.
  static_assert(sizeof(egress_dns_counters) % sizeof(uint64_t) == 0);
  constexpr size_t kWords = sizeof(egress_dns_counters) / sizeof(uint64_t);
  std::array<uint64_t, kWords> sum{};
  for (const egress_dns_counters& c : per_cpu) {
    std::array<uint64_t, kWords> words;
    std::memcpy(words.data(), &c, sizeof(c));
    for (size_t i = 0; i < kWords; ++i) sum[i] += words[i];
  }
  egress_dns_counters out;
  std::memcpy(&out, sum.data(), sizeof(out));
  return out;
}

absl::StatusOr<DnsSweep> SharedMaps::SweepDnsBindings(uint64_t now_ns) {
  return egress::SweepDnsBindings(dns_bindings_.get(), now_ns);
}

absl::StatusOr<size_t> SharedMaps::CountEntries(absl::string_view map) const {
  int fd = FdOf(map);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("no map named ", map));
  return CountKeys(fd);
}

}  // namespace egress
