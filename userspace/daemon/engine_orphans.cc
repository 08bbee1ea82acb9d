// Orphans: program sets found pinned at start that the state does not hold
// (state.json lost, emptied or restored from an older copy). Their hooks
// keep enforcing what the maps say, so egressd shows them instead of
// sweeping their rules: `list` and `status` name them, `target remove`
// lifts them, and nothing else changes them (their rules are unknown).
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"

namespace egress {
namespace {

policy::Mode ModeOfKernel(uint8_t mode) {
  return mode == policy::KernelMode(policy::Mode::kAudit)
             ? policy::Mode::kAudit
             : policy::Mode::kEnforce;
}

}  // namespace

absl::Status RefuseOrphan(const TargetState& t) {
  if (!t.orphan) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "target '", t.name,
      "' was found pinned without state: its rules are unknown, so it "
      "cannot be changed; 'egressctl target remove ",
      t.name, "' lifts it, then add the target again"));
}

void Engine::AdoptOrphans() {
  std::set<uint32_t> known;
  for (const auto& [n, t] : state_.targets) known.insert(t.id);
  for (uint32_t id : kernel_.PinnedTargets()) {
    // The root set of user targets is no target (AdoptUserOrphans).
    if (known.count(id) || id == EGRESS_TARGET_BY_UID ||
        id >= EGRESS_TARGET_ID_LIMIT) {
      continue;
    }
    TargetState t;
    t.name = absl::StrCat("orphan-", id);
    t.id = id;
    t.orphan = true;
    if (auto config = kernel_.TargetConfig(id); config.ok()) {
      t.ruleset = config->ruleset;
      t.mode = ModeOfKernel(config->mode);
    }
    auto cgroup = kernel_.LinkedCgroupOf(id);
    if (cgroup.ok()) t.cgroup = cgroup->rel;
    Log(absl::StrCat(
        "found the pinned program set of target id ", id,
        " without state; kept enforcing as '", t.name, "' (",
        cgroup.ok() ? absl::StrCat("cgroup ", t.cgroup) : "attached nowhere",
        ", rule set ", t.ruleset,
        " kept, rules unknown): 'egressctl target remove ", t.name,
        "' lifts it"));
    names_by_id_[id] = t.name;
    state_.targets.emplace(t.name, std::move(t));
  }
  AdoptUserOrphans();
}

void Engine::AdoptUserOrphans() {
  auto entries = kernel_.UserTargets();
  if (!entries.ok()) {
    Log(absl::StrCat("cannot read the user targets' uids: ",
                     entries.status().ToString()));
  }
  for (const auto& [uid, id] :
       entries.ok() ? *entries : std::map<uint32_t, uint32_t>{}) {
    const TargetState* holder = UserTargetOf(uid);
    if (holder != nullptr && holder->id == id) continue;  // known
    if (holder != nullptr || FindById(id) != nullptr ||
        id == EGRESS_TARGET_BY_UID || id >= EGRESS_TARGET_ID_LIMIT) {
      // The uid is another target's now, or the id is: a leftover.
      kernel_.DeleteUserTarget(uid).IgnoreError();
      continue;
    }
    TargetState t;
    t.name = absl::StrCat("orphan-", id);
    t.id = id;
    t.orphan = true;
    t.source = policy::TargetSource::kUser;
    t.source_value = absl::StrCat(uid);
    t.uid = uid;
    if (auto config = kernel_.TargetConfig(id); config.ok()) {
      t.ruleset = config->ruleset;
      t.mode = ModeOfKernel(config->mode);
    }
    Log(absl::StrCat("found uid ", uid, " enforced as target id ", id,
                     " without state; kept enforcing as '", t.name,
                     "' (rule set ", t.ruleset,
                     " kept, rules unknown): 'egressctl target remove ", t.name,
                     "' lifts it"));
    names_by_id_[id] = t.name;
    state_.targets.emplace(t.name, std::move(t));
  }
  // The root set runs only while a user target exists.
  DropRootSetIfUnused(0);
}

absl::Status Engine::RemoveOrphanEntries(const TargetState& t) {
  if (t.ruleset == 0) return absl::OkStatus();
  // The orphan's entries are the only ones no target uses: changes run one
  // at a time, so no rule set is staged but not yet switched to now. Spares
  // (whole, or as far as the spare writer got) are in use too.
  std::set<uint32_t> keep;
  for (const auto& [n, other] : state_.targets) keep.insert(other.ruleset);
  for (const auto& [id, spare] : spares_) keep.insert(spare.ruleset);
  for (const auto& [id, set] : retiring_) keep.insert(set.ruleset);
  keep.erase(0);
  return kernel_.DeleteRulesetsExcept(keep).status();
}

}  // namespace egress
