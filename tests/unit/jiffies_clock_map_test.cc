// MapJiffies (kernel/jiffies_clock.h) on samples of a made-up kernel: HZ
// from the time between tick edges seen closely, t0 never after the true
// edge.
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/kernel/jiffies_clock.h"

namespace egress {
namespace {

// A kernel of `hz` whose jiffy j starts at edge + (j - j_at_edge) * tick,
// sampled every `step_ns` from `start_ns` for `span_ns`; each jiffy is seen
// `lag_ns` after its edge.
std::vector<ClockSample> Samples(uint32_t hz, uint64_t edge, uint64_t start_ns,
                                 uint64_t step_ns, uint64_t span_ns,
                                 uint64_t lag_ns) {
  const uint64_t tick = TickNsOfHz(hz);
  std::vector<ClockSample> out;
  for (uint64_t t = start_ns; t < start_ns + span_ns; t += step_ns) {
    const uint64_t j = 1000 + (t - lag_ns - edge) / tick;
    out.push_back({j, t});
  }
  return out;
}

TEST(JiffiesClockMapTest, FindsHzAndPutsT0BeforeTheEdge) {
  for (uint32_t hz : {100u, 250u, 300u, 1000u}) {
    const uint64_t tick = TickNsOfHz(hz);
    const uint64_t edge = 5'000'000'000;
    auto c = MapJiffies(
        Samples(hz, edge, edge + tick / 3, 2'000, 60'000'000, 20'000));
    ASSERT_TRUE(c.ok()) << hz << ": " << c.status();
    EXPECT_EQ(c->hz, hz);
    EXPECT_EQ(c->tick_ns, tick);
    // The clock's value at jiffy j0's edge, by the made-up kernel.
    const uint64_t true_t0 = edge + (c->j0 - 1000) * tick;
    EXPECT_LE(c->t0_ns, true_t0) << hz;
    EXPECT_GE(c->t0_ns + tick, true_t0) << hz;
  }
}

TEST(JiffiesClockMapTest, RefusesAnUnknownHzAndTooFewEdges) {
  // HZ=200: 5 ms, not within 5% of 4 or 10 ms.
  auto odd = MapJiffies(Samples(200, 0, 1'000'000, 2'000, 60'000'000, 0));
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kFailedPrecondition);
  // Samples 1 ms apart never place an edge.
  auto sparse =
      MapJiffies(Samples(250, 0, 1'000'000, 1'000'000, 60'000'000, 0));
  EXPECT_EQ(sparse.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(TickNsOfHz(300), 3'333'333u);
}

}  // namespace
}  // namespace egress
