#include "userspace/kernel/peer_evictions.h"

#include <algorithm>

namespace egress {

PeerTally PeerEvictions::Observe(uint32_t id, uint64_t recorded,
                                 uint64_t not_recorded, uint64_t live) {
  PeerTally& t = by_id_[id];
  t.recorded = recorded;
  t.not_recorded = not_recorded;
  t.live = live;
  // More deleted and live than recorded: peers recorded after the counters
  // were read (or entries of the id left from before its counters were
  // zeroed). No eviction can be told from that.
  const uint64_t gone = t.deleted + live;
  const uint64_t evicted = recorded > gone ? recorded - gone : 0;
  t.evicted = std::max(t.evicted, evicted);
  return t;
}

void PeerEvictions::Deleted(uint32_t id, uint64_t n) {
  by_id_[id].deleted += n;
}

void PeerEvictions::Reset(uint32_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  retired_ += it->second.evicted;
  by_id_.erase(it);
}

PeerTally PeerEvictions::Of(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? PeerTally{} : it->second;
}

uint64_t PeerEvictions::TotalEvicted() const {
  uint64_t total = retired_;
  for (const auto& [id, t] : by_id_) total += t.evicted;
  return total;
}

}  // namespace egress
