// The field self-check's view of the engine: which targets to probe and
// with what, and the outcome per target (status, list and metrics show it).
#include "userspace/daemon/engine.h"

namespace egress {

std::vector<Engine::SelfCheckTarget> Engine::SelfCheckTargets() {
  Lock lock(mu_);
  std::vector<SelfCheckTarget> out;
  std::map<uint32_t, std::string> still;
  for (const auto& [name, t] : state_.targets) {
    // A user target is enforced per uid at the cgroup root: a probe from
    // egressd (root) would not be its. Not probed (yet).
    if (t.mode != policy::Mode::kEnforce || t.orphan || IsPattern(t) ||
        IsUser(t) || t.cgroup.empty() || creating_.count(t.id)) {
      continue;
    }
    // Not attached yet (being created): nothing to check.
    auto links = links_.find(t.id);
    if (links == links_.end()) continue;
    SelfCheckTarget c;
    c.id = t.id;
    c.name = name;
    c.cgroup = t.cgroup;
    // The last reconcile's view of the hooks, when it found the cgroup (a
    // failed attach leaves the target here too: that is what is checked).
    if (!links->second.first.empty()) {
      c.hooks_attached = links->second.second.live;
      c.hooks_total = links->second.second.total;
    }
    auto compiled = compiled_.find(t.id);
    c.probe =
        DeniedProbeDestination(compiled == compiled_.end() || t.ruleset == 0
                                   ? policy::CompiledRuleset{}
                                   : compiled->second);
    if (auto d = degraded_.find(t.id); d != degraded_.end()) {
      still.insert(*d);
    }
    out.push_back(std::move(c));
  }
  degraded_ = std::move(still);
  return out;
}

bool Engine::SetSelfCheck(uint32_t id, const std::string& why) {
  Lock lock(mu_);
  // Removed while it was probed (its hooks went with it): nothing to say.
  if (!names_by_id_.count(id)) return false;
  if (why.empty()) {
    degraded_.erase(id);
    return false;
  }
  ++self_check_failures_;
  auto [it, turned] = degraded_.emplace(id, why);
  it->second = why;
  return turned;
}

uint64_t Engine::SelfCheckFailures() const {
  Lock lock(mu_);
  return self_check_failures_;
}

}  // namespace egress
