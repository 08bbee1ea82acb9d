#include "userspace/daemon/kernel_port_bpf.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/program_maps.h"
#include "userspace/kernel/target_programs.h"

namespace egress {
namespace {

constexpr char kLinkDirPrefix[] = "cgroup-";

// The kernel's id of the program pinned at `pin`; 0 when there is none
// (ENOENT). Any other error (EMFILE, EACCES, ...) is one: a pin that cannot
// be opened now is not a missing pin (OpenPin).
absl::StatusOr<uint32_t> ProgIdOfPin(const std::string& pin) {
  absl::StatusOr<UniqueFd> fd = OpenPin(pin);
  if (absl::IsNotFound(fd.status())) return 0;
  if (!fd.ok()) return fd.status();
  bpf_prog_info prog{};
  uint32_t len = sizeof(prog);
  if (bpf_obj_get_info_by_fd(fd->get(), &prog, &len) != 0) {
    return ErrnoStatus(errno, "read the program pinned at", pin);
  }
  return prog.id;
}

// The info of the link pinned at `pin`: the program it runs (prog_id) and,
// for a cgroup link, its cgroup (cgroup.cgroup_id). All zero when there is
// no such link (ENOENT); an error when it cannot be read, as ProgIdOfPin.
absl::StatusOr<bpf_link_info> LinkInfoOfPin(const std::string& pin) {
  absl::StatusOr<UniqueFd> fd = OpenPin(pin);
  if (absl::IsNotFound(fd.status())) return bpf_link_info{};
  if (!fd.ok()) return fd.status();
  bpf_link_info link{};
  uint32_t len = sizeof(link);
  if (bpf_obj_get_info_by_fd(fd->get(), &link, &len) != 0) {
    return ErrnoStatus(errno, "read the link pinned at", pin);
  }
  return link;
}

// The ids of the programs pinned in `dir` for `hooks` (none pinned: none).
absl::StatusOr<std::set<uint32_t>> ProgIdsOfPins(
    const std::string& dir, const std::vector<HookSpec>& hooks) {
  std::set<uint32_t> ids;
  for (const HookSpec& h : hooks) {
    EGRESS_ASSIGN_OR_RETURN(uint32_t id, ProgIdOfPin(ProgPin(dir, h)));
    if (id != 0) ids.insert(id);
  }
  return ids;
}

// The hook of AllHooks() the shared set attaches first at a cgroup: one that
// never denies (recvmsg4 only records peers), so the storage value exists,
// and holds the target id, before any deciding hook runs.
size_t SharedFirstHook() {
  const std::vector<HookSpec>& hooks = AllHooks();
  for (size_t i = 0; i < hooks.size(); ++i) {
    if (hooks[i].attach_type == BPF_CGROUP_UDP4_RECVMSG) return i;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfKernel>> BpfKernel::Open(
    const std::string& bpffs_dir, const std::string& bpffs_mount,
    const std::string& cgroup_root, const LockHolder& holder, bool shared_set) {
  auto k = std::unique_ptr<BpfKernel>(new BpfKernel());
  k->shared_set_ = shared_set;
  k->bpffs_dir_ = bpffs_dir;
  k->bpffs_mount_ = bpffs_mount;
  k->version_dir_ = VersionDir(bpffs_dir);
  k->cgroup_root_ = cgroup_root;
  k->holder_ = holder;
  EGRESS_RETURN_IF_ERROR(EnsureBpffsDir(bpffs_dir, bpffs_mount));
  EGRESS_ASSIGN_OR_RETURN(k->pins_lock_,
                          LockDirectory(bpffs_dir, "pin directory", holder));
  std::string maps_dir = k->version_dir_ + "/maps";
  EGRESS_RETURN_IF_ERROR(MakeDirs(maps_dir, 0700));
  EGRESS_ASSIGN_OR_RETURN(k->maps_, SharedMaps::OpenOrCreate(maps_dir));
  EGRESS_RETURN_IF_ERROR(k->NoteSharedPrograms());
  EGRESS_RETURN_IF_ERROR(k->AdoptLiveStorage());
  return k;
}

std::string BpfKernel::VersionDir(const std::string& bpffs_dir) {
  return absl::StrCat(bpffs_dir, "/v", EGRESS_ABI_VERSION);
}

std::string BpfKernel::SharedDir() const { return version_dir_ + "/shared"; }

absl::Status BpfKernel::NoteSharedPrograms() {
  // Unread, the ids would say no target is on the shared set.
  EGRESS_ASSIGN_OR_RETURN(std::set<uint32_t> ids,
                          ProgIdsOfPins(SharedDir(), AllHooks()));
  std::lock_guard<std::mutex> lock(shared_mu_);
  shared_prog_ids_ = std::move(ids);
  shared_loaded_ = !shared_prog_ids_.empty();
  return absl::OkStatus();
}

absl::Status BpfKernel::AdoptLiveStorage() {
  // The pinned shared programs read the attach_target they were loaded
  // with; when the map pins were made again, that one is the storage the
  // live links use, and every reload must reuse it.
  for (const HookSpec& h : AllHooks()) {
    UniqueFd prog(bpf_obj_get(ProgPin(SharedDir(), h).c_str()));
    if (!prog) continue;
    EGRESS_ASSIGN_OR_RETURN(MapIds used, ProgramMaps(prog.get()));
    EGRESS_ASSIGN_OR_RETURN(MapIds pinned, maps_->Ids());
    auto live = used.find("attach_target");
    if (live == used.end() || live->second == pinned["attach_target"]) {
      return absl::OkStatus();
    }
    UniqueFd fd(bpf_map_get_fd_by_id(live->second));
    if (!fd) {
      return ErrnoStatus(errno, "open the storage map the shared set reads",
                         absl::StrCat("map id ", live->second));
    }
    return maps_->AdoptAttachTarget(std::move(fd));
  }
  return absl::OkStatus();
}

absl::Status BpfKernel::PrepareSharedSet() {
  if (!shared_set_) return absl::OkStatus();
  return LoadShared();
}

absl::Status BpfKernel::LoadShared() {
  std::lock_guard<std::mutex> lock(shared_mu_);
  if (ProgramsPinned(SharedDir(), AllHooks())) {
    if (!shared_prog_ids_.empty()) return absl::OkStatus();
  } else {
    EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(
        EGRESS_TARGET_BY_STORAGE, maps_->dir(), SharedDir(), &AllHooks()));
  }
  EGRESS_ASSIGN_OR_RETURN(shared_prog_ids_,
                          ProgIdsOfPins(SharedDir(), AllHooks()));
  shared_loaded_ = !shared_prog_ids_.empty();
  return absl::OkStatus();
}

std::optional<bool> BpfKernel::SharedSetLoaded() const {
  if (!shared_set_) return std::nullopt;
  return shared_loaded_.load();
}

absl::StatusOr<bool> BpfKernel::OnSharedSet(uint32_t id) {
  if (id == EGRESS_TARGET_BY_UID) return false;
  const std::vector<HookSpec>& hooks = AllHooks();
  const std::string dir = TargetDir(id);
  if (access(ProgPin(dir, hooks[0]).c_str(), F_OK) == 0) return false;
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.find({id, kOwnCgroup});
    if (it != held_.end()) {
      for (const UniqueFd& fd : it->second) {
        if (!fd) continue;
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        std::lock_guard<std::mutex> shared(shared_mu_);
        return shared_prog_ids_.count(info.prog_id) > 0;
      }
    }
  }
  for (const HookSpec& h : hooks) {
    EGRESS_ASSIGN_OR_RETURN(bpf_link_info link, LinkInfoOfPin(LinkPin(dir, h)));
    const uint32_t prog = link.prog_id;
    if (prog == 0) continue;
    std::lock_guard<std::mutex> shared(shared_mu_);
    return shared_prog_ids_.count(prog) > 0;
  }
  return shared_set_;
}

absl::StatusOr<bool> BpfKernel::SharedTakenAt(uint64_t cgroup_id, uint32_t id) {
  const HookSpec& first = AllHooks()[SharedFirstHook()];
  for (uint32_t other : PinnedTargets()) {
    if (other == id) continue;
    EGRESS_ASSIGN_OR_RETURN(const bpf_link_info link,
                            LinkInfoOfPin(LinkPin(TargetDir(other), first)));
    if (link.cgroup.cgroup_id != cgroup_id) continue;
    std::lock_guard<std::mutex> shared(shared_mu_);
    if (shared_prog_ids_.count(link.prog_id) > 0) return true;
  }
  return false;
}

std::string BpfKernel::TargetDir(uint32_t id) const {
  return absl::StrCat(version_dir_, "/targets/", id);
}

std::string BpfKernel::LinkDir(uint32_t id, uint64_t link_set) const {
  if (link_set == kOwnCgroup) return TargetDir(id);
  return absl::StrCat(TargetDir(id), "/", kLinkDirPrefix, link_set);
}

std::string BpfKernel::Abs(const std::string& rel) const {
  return rel == "/" ? cgroup_root_ : absl::StrCat(cgroup_root_, rel);
}

void BpfKernel::RetireOlderAbis() {
  for (int v = 1; v < EGRESS_ABI_VERSION; ++v) {
    std::string dir = absl::StrCat(bpffs_dir_, "/v", v);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) continue;
    for (const std::string& target : LinkDirsBelow(dir + "/targets")) {
      DetachAndRemove(target).IgnoreError();
    }
    if (absl::Status rm = RemoveTree(dir); !rm.ok()) {
      fprintf(stderr, "egressd: cannot remove pins of ABI v%d: %s\n", v,
              rm.ToString().c_str());
      continue;
    }
    fprintf(stderr,
            "egressd: removed the pins of ABI v%d (%s): replaced by v%d\n", v,
            dir.c_str(), EGRESS_ABI_VERSION);
  }
}

absl::Status BpfKernel::WriteEntries(const policy::CompiledRuleset& set) {
  return maps_->WriteEntries(set);
}
absl::Status BpfKernel::DeleteEntries(const policy::CompiledRuleset& set) {
  return maps_->DeleteEntries(set);
}
absl::StatusOr<bool> BpfKernel::HasEntries(const policy::CompiledRuleset& set) {
  return maps_->HasEntries(set);
}
absl::Status BpfKernel::SetTargetConfig(uint32_t id,
                                        const egress_target_config& config) {
  return maps_->SetTargetConfig(id, config);
}
absl::Status BpfKernel::ResetCounters(uint32_t id) {
  return maps_->ResetCounters(id);
}
absl::Status BpfKernel::DeletePeers(uint32_t id) {
  return maps_->DeletePeers(id);
}
absl::StatusOr<std::vector<uint32_t>> BpfKernel::CopiesOf(
    const policy::CompiledRuleset& set) {
  return maps_->CopiesOf(set);
}
absl::StatusOr<uint32_t> BpfKernel::MaxRulesetInMaps() {
  return maps_->MaxRulesetInMaps();
}
absl::StatusOr<size_t> BpfKernel::DeleteRulesetsExcept(
    const std::set<uint32_t>& keep) {
  return maps_->DeleteRulesetsExcept(keep);
}
absl::StatusOr<egress_counters> BpfKernel::Counters(uint32_t id) {
  return maps_->Counters(id);
}
absl::StatusOr<std::map<uint32_t, uint64_t>> BpfKernel::RuleHits(uint32_t id) {
  return maps_->RuleHits(id);
}

absl::Status BpfKernel::DeleteRuleHits(uint32_t id,
                                       const std::vector<uint32_t>& rule_ids) {
  return maps_->DeleteRuleHits(id, rule_ids);
}
absl::StatusOr<UdpPeerReport> BpfKernel::UdpPeers(
    const std::vector<uint32_t>& ids) {
  // A scrape and a status each ask: one walk of the map (up to
  // EGRESS_MAX_PEERS entries) serves both, and any asking in between.
  return maps_->UdpPeers(ids, absl::Seconds(2));
}
absl::StatusOr<egress_dns_counters> BpfKernel::DnsCounters(uint32_t id) {
  return maps_->DnsCounters(id);
}
absl::StatusOr<DnsSweep> BpfKernel::SweepDnsBindings() {
  // bpf_ktime_get_ns() is CLOCK_MONOTONIC.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return maps_->SweepDnsBindings(static_cast<uint64_t>(ts.tv_sec) *
                                     1000000000ULL +
                                 static_cast<uint64_t>(ts.tv_nsec));
}
absl::Status BpfKernel::SetUserTarget(uint32_t uid, uint32_t id) {
  return maps_->SetUserTarget(uid, id);
}
absl::Status BpfKernel::DeleteUserTarget(uint32_t uid) {
  return maps_->DeleteUserTarget(uid);
}
absl::StatusOr<std::map<uint32_t, uint32_t>> BpfKernel::UserTargets() {
  return maps_->UserTargets();
}

bool BpfKernel::ProgramsLoaded(uint32_t id) {
  if (ProgramsPinned(TargetDir(id), HooksOf(id))) return true;
  // A target of the shared set has a directory of link pins only.
  struct stat st;
  absl::StatusOr<bool> on_shared = OnSharedSet(id);
  if (!on_shared.ok()) {
    // Its link pins cannot be read now (out of descriptors): "not loaded"
    // would have LoadPrograms remove the target's directory, and with it
    // the link pins that enforce it. The attach that follows reads them
    // again and fails with the reason if they are still unreadable.
    std::lock_guard<std::mutex> lock(unreadable_mu_);
    if (unreadable_said_.insert(id).second) {
      fprintf(stderr,
              "egressd: target %u: %s; its pins are kept as they are (said "
              "once until they can be read)\n",
              id, on_shared.status().ToString().c_str());
    }
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(unreadable_mu_);
    if (unreadable_said_.erase(id) > 0) {
      fprintf(stderr, "egressd: target %u: its pins can be read again\n", id);
    }
  }
  return *on_shared && stat(TargetDir(id).c_str(), &st) == 0 &&
         ProgramsPinned(SharedDir(), AllHooks());
}

absl::Status BpfKernel::LoadPrograms(uint32_t id) {
  bool holds_links = false;
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.lower_bound({id, 0});
    holds_links = it != held_.end() && it->first.first == id;
  }
  // Leftovers of a removed target go; the link pins of a target whose
  // program pins were removed stay (its links run the programs meanwhile).
  if (!holds_links) RemoveTree(TargetDir(id)).IgnoreError();
  bool on_shared = !holds_links;
  if (holds_links && shared_set_ && id != EGRESS_TARGET_BY_UID) {
    EGRESS_ASSIGN_OR_RETURN(on_shared, OnSharedSet(id));
  }
  if (shared_set_ && id != EGRESS_TARGET_BY_UID && on_shared) {
    // The programs are the shared set's; Attach decides, knowing the
    // cgroup, whether the target can use it or needs a set of its own.
    EGRESS_RETURN_IF_ERROR(LoadShared());
    return MakeDirs(TargetDir(id), 0700);
  }
  return LoadAndPinPrograms(id, maps_->dir(), TargetDir(id));
}

absl::StatusOr<bool> BpfKernel::RefreshPrograms(uint32_t id) {
  EGRESS_ASSIGN_OR_RETURN(MapIds pinned, maps_->Ids());
  EGRESS_ASSIGN_OR_RETURN(bool on_shared, OnSharedSet(id));
  if (on_shared) {
    // One reload for every target of the set: all their links move to the
    // new programs (attach_target is the live one: AdoptLiveStorage).
    std::lock_guard<std::mutex> lock(shared_mu_);
    EGRESS_ASSIGN_OR_RETURN(bool current,
                            ProgramsUseMaps(SharedDir(), pinned, AllHooks()));
    if (current) return false;
    EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(
        EGRESS_TARGET_BY_STORAGE, maps_->dir(), SharedDir(), &AllHooks()));
    std::vector<std::string> link_dirs;
    for (uint32_t other : PinnedTargets()) {
      if (access(ProgPin(TargetDir(other), AllHooks()[0]).c_str(), F_OK) != 0) {
        link_dirs.push_back(TargetDir(other));
      }
    }
    EGRESS_RETURN_IF_ERROR(UpdateLinks(SharedDir(), link_dirs, AllHooks()));
    EGRESS_ASSIGN_OR_RETURN(shared_prog_ids_,
                            ProgIdsOfPins(SharedDir(), AllHooks()));
    shared_loaded_ = !shared_prog_ids_.empty();
    return true;
  }
  EGRESS_ASSIGN_OR_RETURN(bool current,
                          ProgramsUseMaps(TargetDir(id), pinned, HooksOf(id)));
  if (current) return false;
  EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(id, maps_->dir(), TargetDir(id)));
  std::vector<std::string> link_dirs = LinkDirsBelow(TargetDir(id));
  link_dirs.push_back(TargetDir(id));
  EGRESS_RETURN_IF_ERROR(UpdateLinks(TargetDir(id), link_dirs, HooksOf(id)));
  return true;
}

absl::StatusOr<int> BpfKernel::RepairPins() {
  if (!IsOnBpffs(bpffs_dir_)) {
    // bpffs unmounted or the pin root removed: a new one, locked again (the
    // old lock is on a directory nobody can reach any more).
    EGRESS_RETURN_IF_ERROR(EnsureBpffsDir(bpffs_dir_, bpffs_mount_));
    EGRESS_ASSIGN_OR_RETURN(
        pins_lock_, LockDirectory(bpffs_dir_, "pin directory", holder_));
  }
  EGRESS_ASSIGN_OR_RETURN(int made, maps_->PinMissing());
  std::lock_guard<std::mutex> lock(held_mu_);
  std::map<uint32_t, std::vector<const HeldLinks*>> by_target;
  std::vector<const HeldLinks*> shared;
  {
    std::lock_guard<std::mutex> lock_shared(shared_mu_);
    for (const auto& [key, links] : held_) {
      bool runs_shared = false;
      for (const UniqueFd& fd : links) {
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (fd && bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) {
          runs_shared = shared_prog_ids_.count(info.prog_id) > 0;
          break;
        }
      }
      (runs_shared ? shared : by_target[key.first]).push_back(&links);
    }
  }
  for (const auto& [id, sets] : by_target) {
    made += KeepProgramsPinned(TargetDir(id), sets, HooksOf(id));
  }
  if (!shared.empty()) made += KeepProgramsPinned(SharedDir(), shared);
  // The watch instances too: their pins are what keeps a parent's links
  // (and so a re-created target's enforcement) once egressd stops.
  const std::vector<HookSpec>& watch_hooks = HooksOf(EGRESS_TARGET_BY_CGROUP);
  for (auto& [parent_id, links] : watch_held_) {
    const std::string dir = WatchDir(parent_id);
    made += KeepPinned(dir, links, watch_hooks);
    made += KeepProgramsPinned(dir, {&links}, watch_hooks);
  }
  return made;
}

absl::Status BpfKernel::RemovePrograms(uint32_t id) {
  {
    // Every held set, also one whose pins or directory are gone.
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.lower_bound({id, 0});
    while (it != held_.end() && it->first.first == id) {
      DetachHeld(it->second);
      it = held_.erase(it);
    }
  }
  {
    // A later target of this id says its own unreadable pins again.
    std::lock_guard<std::mutex> lock(unreadable_mu_);
    unreadable_said_.erase(id);
  }
  absl::Status removed = DetachAndRemove(TargetDir(id));
  // After the removal (Detach says why).
  link_reads_.Forget(TargetDir(id));
  return removed;
}

std::vector<uint32_t> BpfKernel::PinnedTargets() {
  std::vector<uint32_t> ids;
  for (const std::string& name : SubdirNames(version_dir_ + "/targets")) {
    uint32_t id = 0;
    if (absl::SimpleAtoi(name, &id) && id > 0) ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<egress_target_config> BpfKernel::TargetConfig(uint32_t id) {
  return maps_->TargetConfig(id);
}

absl::StatusOr<std::string> BpfKernel::CgroupPathOf(uint64_t cgroup_id) {
  EGRESS_ASSIGN_OR_RETURN(std::string abs,
                          CgroupPathOfId(cgroup_root_, cgroup_id));
  std::string rel = abs.substr(std::min(abs.size(), cgroup_root_.size()));
  return rel.empty() ? "/" : rel;
}

absl::StatusOr<LinkedCgroup> BpfKernel::LinkedCgroupOf(uint32_t id) {
  for (const LinkState& l : LinkStates(TargetDir(id), HooksOf(id))) {
    if (l.cgroup_id == 0) continue;
    EGRESS_ASSIGN_OR_RETURN(std::string rel, CgroupPathOf(l.cgroup_id));
    return LinkedCgroup{rel, l.cgroup_id};
  }
  return absl::NotFoundError(
      absl::StrCat("no link of target ", id, " is attached"));
}

void BpfKernel::DropHeld(uint32_t id, uint64_t link_set) {
  std::lock_guard<std::mutex> lock(held_mu_);
  auto it = held_.find({id, link_set});
  if (it == held_.end()) return;
  DetachHeld(it->second);
  held_.erase(it);
}

absl::StatusOr<uint64_t> BpfKernel::CgroupId(const std::string& rel) {
  return egress::CgroupId(Abs(rel));
}

CgroupMatches BpfKernel::MatchCgroups(const std::string& pattern) {
  return FindCgroups(cgroup_root_, pattern);
}

std::vector<std::string> BpfKernel::ChildCgroups(const std::string& rel) {
  return SubdirNames(Abs(rel));
}

absl::Status BpfKernel::Attach(uint32_t id, uint64_t link_set,
                               const std::string& rel, uint64_t cgroup_id) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroup(Abs(rel)));
  bool on_shared = false;
  if (link_set == kOwnCgroup) {
    EGRESS_ASSIGN_OR_RETURN(on_shared, OnSharedSet(id));
  }
  if (on_shared) {
    EGRESS_ASSIGN_OR_RETURN(bool taken, SharedTakenAt(cgroup_id, id));
    if (!taken) {
      EGRESS_RETURN_IF_ERROR(LoadShared());
      std::lock_guard<std::mutex> lock(held_mu_);
      // The storage value exists once the first link does: the target id
      // is written before any hook that decides is attached.
      return AttachPinnedFirst(
          SharedDir(), TargetDir(id), fd.get(), cgroup_id,
          &held_[{id, kOwnCgroup}], AllHooks(), SharedFirstHook(),
          [&] { return maps_->SetAttachTarget(cgroup_id, id); });
    }
    // Another target has the shared set here, with the one storage value
    // of this cgroup: this one gets programs of its own.
  }
  if (!ProgramsPinned(TargetDir(id), HooksOf(id))) {
    EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(id, maps_->dir(), TargetDir(id)));
  }
  std::lock_guard<std::mutex> lock(held_mu_);
  return AttachPinnedTo(TargetDir(id), LinkDir(id, link_set), fd.get(),
                        cgroup_id, &held_[{id, link_set}], HooksOf(id));
}

LinkHealth BpfKernel::Links(uint32_t id, uint64_t link_set,
                            uint64_t cgroup_id) {
  std::string dir = LinkDir(id, link_set);
  std::lock_guard<std::mutex> lock(held_mu_);
  HeldLinks& held = held_[{id, link_set}];
  int repinned = KeepPinned(dir, held, HooksOf(id));
  LinkHealth health = CheckLinks(dir, cgroup_id, &held, HooksOf(id));
  health.repinned = repinned;
  return health;
}

LinkHealth BpfKernel::ReadLinks(uint32_t id, uint64_t link_set,
                                uint64_t cgroup_id) {
  // What the held links are now (a call per link, no path walk): with the
  // link directory, what tells whether the last read still holds
  // (LinkReadMemo). No entry is made for a set not held.
  std::vector<LinkIds> held_ids;
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.find({id, link_set});
    if (it != held_.end()) {
      for (const UniqueFd& fd : it->second) {
        held_ids.push_back(fd ? LinkInfo(fd.get()) : LinkIds{});
      }
    }
  }
  // For a full read, copies of the held links, so that the kernel is read
  // without held_mu_ (Attach and Links take it).
  auto held = [&] {
    HeldLinks copies;
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = held_.find({id, link_set});
    if (it != held_.end()) {
      for (const UniqueFd& fd : it->second) {
        copies.emplace_back(fd ? fcntl(fd.get(), F_DUPFD_CLOEXEC, 0) : -1);
      }
    }
    return copies;
  };
  return link_reads_.Read(LinkDir(id, link_set), cgroup_id, held_ids, held,
                          HooksOf(id));
}

std::vector<uint64_t> BpfKernel::LinkSets(uint32_t id) {
  std::vector<uint64_t> sets;
  for (const std::string& dir : LinkDirsBelow(TargetDir(id))) {
    std::string base = dir.substr(dir.rfind('/') + 1);
    uint64_t cgroup_id = 0;
    if (absl::StartsWith(base, kLinkDirPrefix) &&
        absl::SimpleAtoi(base.substr(sizeof(kLinkDirPrefix) - 1), &cgroup_id)) {
      sets.push_back(cgroup_id);
    }
  }
  return sets;
}

bool BpfKernel::LinkSetDefunct(uint32_t id, uint64_t link_set) {
  return CheckLinks(LinkDir(id, link_set), 0, nullptr, HooksOf(id)).defunct();
}

absl::Status BpfKernel::Detach(uint32_t id, uint64_t link_set) {
  DropHeld(id, link_set);
  const std::string dir = LinkDir(id, link_set);
  absl::Status removed = DetachAndRemoveLinks(dir);
  // A set's link directory is named by its cgroup's id, which never comes
  // back: a read kept for it would stay for as long as egressd runs, one
  // per cgroup a pattern or workload target ever had. Forgotten after the
  // removal: a reconcile's read between a Forget and the removal (its links
  // detached, the directory still there) was kept, and outlived it. A read
  // under way now keeps nothing; one after finds no directory.
  link_reads_.Forget(dir);
  return removed;
}

std::string BpfKernel::WatchDir(uint64_t parent_id) const {
  return absl::StrCat(version_dir_, "/watch/", parent_id);
}

namespace {

// The level of a cgroup (the root is 0) from its path relative to the
// cgroup2 mount.
uint32_t CgroupLevel(const std::string& rel) {
  uint32_t level = 0;
  for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    if (part != ".") ++level;
  }
  return level;
}

}  // namespace

absl::Status BpfKernel::Watch(const std::string& rel, uint64_t parent_id) {
  const std::vector<HookSpec>& hooks = HooksOf(EGRESS_TARGET_BY_CGROUP);
  const std::string dir = WatchDir(parent_id);
  const uint32_t level = CgroupLevel(rel);
  // The directory is the parent's id, which no other cgroup ever has: its
  // pinned programs were loaded for this parent's level.
  if (!ProgramsPinned(dir, hooks) && !PinWatchProgramsOfLevel(dir, level)) {
    EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(
        EGRESS_TARGET_BY_CGROUP, maps_->dir(), dir, &hooks, level));
  }
  NoteWatchPrograms(dir, level);
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroup(Abs(rel)));
  std::lock_guard<std::mutex> lock(held_mu_);
  return AttachPinned(dir, fd.get(), parent_id, &watch_held_[parent_id], hooks);
}

void BpfKernel::NoteWatchPrograms(const std::string& dir, uint32_t level) {
  std::vector<UniqueFd> progs;
  for (const HookSpec& h : HooksOf(EGRESS_TARGET_BY_CGROUP)) {
    UniqueFd fd(bpf_obj_get(ProgPin(dir, h).c_str()));
    if (!fd) return;  // kept as it was: a set in full or none
    progs.push_back(std::move(fd));
  }
  std::lock_guard<std::mutex> lock(held_mu_);
  watch_programs_[level] = std::move(progs);
}

bool BpfKernel::PinWatchProgramsOfLevel(const std::string& dir,
                                        uint32_t level) {
  const std::vector<HookSpec>& hooks = HooksOf(EGRESS_TARGET_BY_CGROUP);
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = watch_programs_.find(level);
    if (it == watch_programs_.end() || it->second.size() != hooks.size()) {
      return false;
    }
    if (!MakeDirs(dir, 0700).ok()) return false;
    for (size_t i = 0; i < hooks.size(); ++i) {
      const std::string pin = ProgPin(dir, hooks[i]);
      unlink(pin.c_str());  // a partial set's leftover
      if (bpf_obj_pin(it->second[i].get(), pin.c_str()) != 0) return false;
    }
  }
  // Loaded against the maps pinned then: reused only while they are the
  // maps pinned now (else loaded anew, replacing these pins).
  absl::StatusOr<MapIds> pinned = maps_->Ids();
  if (!pinned.ok()) return false;
  absl::StatusOr<bool> current = ProgramsUseMaps(dir, *pinned, hooks);
  return current.ok() && *current;
}

absl::Status BpfKernel::Unwatch(uint64_t parent_id) {
  {
    std::lock_guard<std::mutex> lock(held_mu_);
    auto it = watch_held_.find(parent_id);
    if (it != watch_held_.end()) {
      DetachHeld(it->second);
      watch_held_.erase(it);
    }
  }
  EGRESS_RETURN_IF_ERROR(DetachAndRemove(WatchDir(parent_id)));
  // No instance reads them any more; a parent made again has another id.
  return maps_->DeleteWatchNamesOf(parent_id);
}

std::vector<uint64_t> BpfKernel::WatchedParents() {
  std::vector<uint64_t> ids;
  for (const std::string& name : SubdirNames(version_dir_ + "/watch")) {
    uint64_t id = 0;
    if (absl::SimpleAtoi(name, &id) && id > 0) ids.push_back(id);
  }
  return ids;
}

absl::Status BpfKernel::SetWatchName(uint64_t parent_id,
                                     const std::string& name, uint32_t id) {
  return maps_->SetWatchName(parent_id, name, id);
}
absl::Status BpfKernel::AddWatchName(uint64_t parent_id,
                                     const std::string& name, uint32_t id) {
  return maps_->AddWatchName(parent_id, name, id);
}
absl::Status BpfKernel::DeleteWatchName(uint64_t parent_id,
                                        const std::string& name) {
  return maps_->DeleteWatchName(parent_id, name);
}
absl::Status BpfKernel::SetWatchParent(uint64_t parent_id,
                                       const egress_watch_parent& parent) {
  return maps_->SetWatchParent(parent_id, parent);
}
absl::Status BpfKernel::DeleteWatchParent(uint64_t parent_id) {
  return maps_->DeleteWatchParent(parent_id);
}
absl::Status BpfKernel::SetCgroupClass(uint64_t cgroup_id, uint32_t value) {
  return maps_->SetCgroupClass(cgroup_id, value);
}
absl::Status BpfKernel::DeleteCgroupClass(uint64_t cgroup_id) {
  return maps_->DeleteCgroupClass(cgroup_id);
}

}  // namespace egress
