// Which learned-name entries the sweep may delete (kernel/dns_sweep.h).
#include "userspace/kernel/dns_sweep.h"

#include "gtest/gtest.h"

namespace egress {
namespace {

constexpr uint64_t kSec = 1000000000ULL;

TEST(DnsSweepTest, LiveAndDeadFor) {
  egress_dns_binding b{};
  b.slot[0] = {7, 100 * kSec};
  b.slot[2] = {9, 50 * kSec};
  EXPECT_TRUE(BindingLive(b, 99 * kSec));
  EXPECT_FALSE(BindingLive(b, 100 * kSec));
  // Dead for 10 s only once the latest slot expired 10 s ago.
  EXPECT_FALSE(BindingDeadFor(b, 109 * kSec, EGRESS_DNS_SWEEP_NS));
  EXPECT_TRUE(BindingDeadFor(b, 110 * kSec, EGRESS_DNS_SWEEP_NS));
  // A live slot is never dead, however long ago the others expired.
  EXPECT_FALSE(BindingDeadFor(b, 20 * kSec, EGRESS_DNS_SWEEP_NS));
  // Free slots (pattern 0) do not count.
  egress_dns_binding empty{};
  empty.slot[1] = {0, ~0ULL};
  EXPECT_TRUE(BindingDeadFor(empty, 0, EGRESS_DNS_SWEEP_NS));
  // The kernel's in-place threshold is shorter than the sweep's.
  static_assert(EGRESS_DNS_DEAD_NS < EGRESS_DNS_SWEEP_NS);
}

}  // namespace
}  // namespace egress
