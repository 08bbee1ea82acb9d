// Evictions from udp_peers, derived. The LRU hash tells nobody what it
// evicts; what can be counted exactly is every entry a target's recvmsg
// hooks made (egress_counters.peers_recorded, bpf/lib/peers.h), every entry
// egressd deleted (SharedMaps::DeletePeers) and the entries in the map now
// (a walk). An entry neither deleted nor there was evicted:
//
//   evicted = recorded - deleted - live
//
// Looked at in that order (the counters first, then the walk), a peer
// recorded meanwhile is in `live` without being in `recorded`: the figure
// can only come out smaller than the truth, never invent an eviction, and
// the next look catches up. PeerEvictions keeps the figures per target id,
// never lets a target's evictions go down, and keeps a total over every
// target egressd looked at since it started, also those removed since.
// Pure bookkeeping: SharedMaps reads the kernel and feeds it.
#ifndef EGRESS_USERSPACE_KERNEL_PEER_EVICTIONS_H_
#define EGRESS_USERSPACE_KERNEL_PEER_EVICTIONS_H_

#include <cstdint>
#include <map>

namespace egress {

// The udp_peers figures of one target.
struct PeerTally {
  uint64_t recorded = 0;      // entries its hooks made
  uint64_t not_recorded = 0;  // insertions that failed (not a race)
  uint64_t deleted = 0;       // entries egressd deleted (target removed)
  uint64_t live = 0;          // entries in udp_peers at the last look
  uint64_t evicted = 0;       // derived; never goes down
};

// The figures of some targets, by id, and the evictions of every target.
struct UdpPeerReport {
  std::map<uint32_t, PeerTally> targets;
  uint64_t evicted_total = 0;
};

class PeerEvictions {
 public:
  // One look at target `id`: its counters, read first, and its entries in
  // udp_peers, counted after. Returns the target's figures.
  PeerTally Observe(uint32_t id, uint64_t recorded, uint64_t not_recorded,
                    uint64_t live);
  // egressd deleted `n` entries of `id`: not evictions.
  void Deleted(uint32_t id, uint64_t n);
  // The counters of `id` were zeroed (the id serves a new target): its
  // figures go, its evictions stay in the total.
  void Reset(uint32_t id);
  // The figures of the last look at `id` (zero when none).
  PeerTally Of(uint32_t id) const;
  // Evictions of every target since the start, removed ones included.
  uint64_t TotalEvicted() const;

 private:
  std::map<uint32_t, PeerTally> by_id_;
  uint64_t retired_ = 0;  // evictions of ids reset since
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_PEER_EVICTIONS_H_
