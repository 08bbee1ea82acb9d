// How egressd derives the udp_peers entries the LRU evicted
// (kernel/peer_evictions.h): recorded - deleted - live, never negative,
// never going down, removals apart.
#include "userspace/kernel/peer_evictions.h"

#include "gtest/gtest.h"

namespace egress {
namespace {

TEST(PeerEvictions, NothingEvictedWhileEveryPeerIsThere) {
  PeerEvictions e;
  PeerTally t = e.Observe(3, /*recorded=*/100, /*not_recorded=*/0,
                          /*live=*/100);
  EXPECT_EQ(t.recorded, 100u);
  EXPECT_EQ(t.live, 100u);
  EXPECT_EQ(t.evicted, 0u);
  EXPECT_EQ(e.TotalEvicted(), 0u);
}

TEST(PeerEvictions, RecordedAndGoneIsEvicted) {
  PeerEvictions e;
  EXPECT_EQ(e.Observe(3, 300, 2, 262).evicted, 38u);
  EXPECT_EQ(e.Of(3).not_recorded, 2u);
  EXPECT_EQ(e.TotalEvicted(), 38u);
}

// The counters are read before the walk: peers recorded in between are
// live but not recorded. That can hide an eviction, never make one up.
TEST(PeerEvictions, PeersRecordedDuringTheWalkInventNothing) {
  PeerEvictions e;
  EXPECT_EQ(e.Observe(3, 100, 0, 120).evicted, 0u);
  EXPECT_EQ(e.Observe(3, 100, 0, 95).evicted, 5u);
}

// A look that comes out lower (entries recorded during its walk) does not
// take back what an earlier look found.
TEST(PeerEvictions, NeverGoesDown) {
  PeerEvictions e;
  EXPECT_EQ(e.Observe(3, 100, 0, 90).evicted, 10u);
  EXPECT_EQ(e.Observe(3, 110, 0, 105).evicted, 10u);
  EXPECT_EQ(e.Observe(3, 130, 0, 110).evicted, 20u);
  EXPECT_EQ(e.TotalEvicted(), 20u);
}

TEST(PeerEvictions, DeletedEntriesAreNoEvictions) {
  PeerEvictions e;
  EXPECT_EQ(e.Observe(3, 50, 0, 50).evicted, 0u);
  e.Deleted(3, 50);
  PeerTally t = e.Observe(3, 50, 0, 0);
  EXPECT_EQ(t.deleted, 50u);
  EXPECT_EQ(t.evicted, 0u);
  EXPECT_EQ(e.TotalEvicted(), 0u);
}

TEST(PeerEvictions, EvictedBeforeTheDeleteStayCounted) {
  PeerEvictions e;
  // 50 recorded, 45 left for the delete: 5 evicted.
  e.Deleted(3, 45);
  EXPECT_EQ(e.Observe(3, 50, 0, 0).evicted, 5u);
}

// A removed target's evictions stay in the total when its id serves a new
// target, which starts from nothing.
TEST(PeerEvictions, ResetKeepsTheTotal) {
  PeerEvictions e;
  e.Observe(3, 100, 0, 60);
  e.Observe(4, 10, 0, 9);
  e.Deleted(3, 60);
  e.Observe(3, 100, 0, 0);
  EXPECT_EQ(e.TotalEvicted(), 41u);
  e.Reset(3);
  EXPECT_EQ(e.Of(3).recorded, 0u);
  EXPECT_EQ(e.Of(3).deleted, 0u);
  EXPECT_EQ(e.Of(3).evicted, 0u);
  EXPECT_EQ(e.TotalEvicted(), 41u);
  EXPECT_EQ(e.Observe(3, 7, 0, 7).evicted, 0u);
  EXPECT_EQ(e.Observe(3, 9, 0, 7).evicted, 2u);
  EXPECT_EQ(e.TotalEvicted(), 43u);
  e.Reset(99);  // never seen: nothing changes
  EXPECT_EQ(e.TotalEvicted(), 43u);
}

TEST(PeerEvictions, OfAnUnseenIdIsZero) {
  PeerEvictions e;
  PeerTally t = e.Of(8);
  EXPECT_EQ(t.recorded, 0u);
  EXPECT_EQ(t.evicted, 0u);
}

}  // namespace
}  // namespace egress
