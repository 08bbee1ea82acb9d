#include "userspace/daemon/removed_targets.h"

#include <utility>

namespace egress {

void RemovedTargets::Remember(uint32_t id, std::string name, absl::Time now) {
  while (!removed_.empty() &&
         (removed_.size() >= kMaxKept || now - removed_.front().at > kGrace)) {
    removed_.pop_front();
  }
  removed_.push_back({id, std::move(name), now});
}

std::string RemovedTargets::NameOf(uint32_t id, absl::Time now) const {
  // Newest first: an id given again and removed again names its latest.
  for (auto it = removed_.rbegin(); it != removed_.rend(); ++it) {
    if (now - it->at > kGrace) break;
    if (it->id == id) return it->name;
  }
  return "";
}

}  // namespace egress
