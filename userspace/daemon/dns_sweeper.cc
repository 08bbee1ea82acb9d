#include "userspace/daemon/dns_sweeper.h"

#include "userspace/common/status_macros.h"

namespace egress {

absl::Status DnsSweeper::Sweep() {
  EGRESS_ASSIGN_OR_RETURN(DnsSweep found, kernel_.SweepDnsBindings());
  std::lock_guard<std::mutex> lock(mu_);
  // Live and expired are what this sweep saw; a target it found nothing of
  // has none.
  for (auto& [id, t] : targets_) t.live = t.expired = 0;
  for (const auto& [id, f] : found.targets) {
    DnsSweep::Target& t = targets_[id];
    t.live = f.live;
    t.expired = f.expired;
    t.swept += f.swept;
    t.restored += f.restored;
  }
  return absl::OkStatus();
}

std::map<uint32_t, DnsSweep::Target> DnsSweeper::Targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

DnsSweep::Target DnsSweeper::Of(uint32_t target_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = targets_.find(target_id);
  return it == targets_.end() ? DnsSweep::Target{} : it->second;
}

}  // namespace egress
