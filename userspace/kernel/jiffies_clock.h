// The kernel's jiffies mapped onto its bpf_ktime_get_ns() clock
// (CLOCK_MONOTONIC), so that a connect reads a learned address's expiry
// without a helper call (bpf/lib/clock.h says why and how far off it is).
// egressd measures the mapping once, at its first program load, with the
// clock probe (bpf/clock_probe.bpf.c) run by BPF_PROG_TEST_RUN, and writes
// it into every program set's .rodata; a set keeps its mapping through a
// SIGKILL or an adopting restart, which is still the same boot.
#ifndef EGRESS_USERSPACE_KERNEL_JIFFIES_CLOCK_H_
#define EGRESS_USERSPACE_KERNEL_JIFFIES_CLOCK_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace egress {

// ktime ~= t0_ns + (jiffies - j0) * tick_ns; tick_ns 0: not measured (the
// programs read bpf_ktime_get_ns()).
struct JiffiesClock {
  uint32_t hz = 0;
  uint64_t tick_ns = 0;
  uint64_t j0 = 0;
  uint64_t t0_ns = 0;
};

// One read of the probe: jiffies, then the clock.
struct ClockSample {
  uint64_t jiffies = 0;
  uint64_t ktime_ns = 0;
};

// The kernel's TICK_NSEC for `hz`: (10^9 + hz/2) / hz.
uint64_t TickNsOfHz(uint32_t hz);

// Pure: the mapping from samples read in order, some tens of ms of them
// (one every few microseconds). HZ is one of 100, 250, 300 and 1000, the
// one whose tick lies within 5% of the time between the first and the last
// tick edge seen closely (a jiffy step of one between samples at most
// 100 us apart); t0 lies half a tick before the earliest edge, so that the
// mapping is never ahead of the clock. FailedPrecondition when the samples
// show fewer than two such edges or no allowed HZ.
absl::StatusOr<JiffiesClock> MapJiffies(absl::Span<const ClockSample> samples);

// Runs the clock probe for about 60 ms (at most 200,000 runs) and maps
// the samples; up to three tries when the machine was too busy to see the
// edges. Needs CAP_BPF (and CAP_SYS_ADMIN for the test run).
absl::StatusOr<JiffiesClock> MeasureJiffiesClock();

// MeasureJiffiesClock() once per process; the zero mapping when it failed
// (JiffiesClockWarning() says why).
const JiffiesClock& KernelJiffiesClock();

// What egressd prints at start when the mapping could not be measured; ""
// when it was.
std::string JiffiesClockWarning();

// Writes `c` into the .rodata of a skeleton of an object that includes
// bpf/lib/clock.h, between its open and its load.
template <typename Rodata>
void WriteClockRodata(const JiffiesClock& c, Rodata* rodata) {
  rodata->egress_clock_tick_ns = c.tick_ns;
  rodata->egress_clock_j0 = c.j0;
  rodata->egress_clock_t0_ns = c.t0_ns;
}

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_JIFFIES_CLOCK_H_
