// The jiffies clock of a connect to a learned address (bpf/lib/clock.h), on
// the running kernel: egressd's measured mapping (kernel/jiffies_clock.cc)
// has one of the kernels' HZ values, and the programs' clock__now() with it
// is never ahead of bpf_ktime_get_ns() and at most two ticks behind, over
// a span long enough that a wrong HZ or tick would drift out of that.
#include "userspace/kernel/jiffies_clock.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clock_probe.skel.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/testing/privileges.h"

namespace egress {
namespace {

struct ProbeDeleter {
  void operator()(clock_probe* p) const { clock_probe__destroy(p); }
};

TEST(JiffiesClockTest, MeasuredHzIsOneOfTheKernelsValues) {
  EGRESS_REQUIRE_ROOT();
  absl::StatusOr<JiffiesClock> c = MeasureJiffiesClock();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->hz == 100 || c->hz == 250 || c->hz == 300 || c->hz == 1000)
      << c->hz;
  EXPECT_EQ(c->tick_ns, TickNsOfHz(c->hz));
  EXPECT_NE(c->t0_ns, 0u);
  // The same mapping every program set is loaded with.
  EXPECT_EQ(KernelJiffiesClock().hz, c->hz);
  EXPECT_EQ(JiffiesClockWarning(), "");
}

TEST(JiffiesClockTest, DerivedNowIsNeverAheadAndWithinTwoTicks) {
  EGRESS_REQUIRE_ROOT();
  const JiffiesClock& c = KernelJiffiesClock();
  ASSERT_NE(c.tick_ns, 0u) << JiffiesClockWarning();
  std::unique_ptr<clock_probe, ProbeDeleter> skel(clock_probe__open());
  ASSERT_TRUE(skel);
  WriteClockRodata(c, skel->rodata);
  ASSERT_EQ(clock_probe__load(skel.get()), 0);
  const int fd = bpf_program__fd(skel->progs.clock_sample);
  // 100 samples 3 ms apart: 300 ms, over which HZ=250 read as 300 (or a
  // tick off by a part in a hundred) would be off by more than two ticks.
  constexpr int kSamples = 100;
  int within = 0;
  uint64_t first = 0, last = 0;
  for (int i = 0; i < kSamples; ++i) {
    egress_clock_sample s{};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &s, .ctx_size_in = sizeof(s));
    ASSERT_EQ(bpf_prog_test_run_opts(fd, &run), 0) << errno;
    if (i == 0) first = s.ktime_ns;
    last = s.ktime_ns;
    EXPECT_LE(s.derived_ns, s.ktime_ns_after)
        << "sample " << i << ": a binding would expire early";
    if (s.ktime_ns_after - s.derived_ns <= 2 * c.tick_ns) ++within;
    absl::SleepFor(absl::Milliseconds(3));
  }
  // Jiffies lag their tick edge by the tick interrupt's latency; on a
  // loaded machine an odd sample may lag more.
  EXPECT_GE(within, kSamples * 95 / 100);
  EXPECT_GE(last - first, 250'000'000u) << "the span of the samples";
}

}  // namespace
}  // namespace egress
