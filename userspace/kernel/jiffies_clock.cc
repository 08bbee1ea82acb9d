#include "userspace/kernel/jiffies_clock.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "clock_probe.skel.h"
#include "egress/abi.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

// The HZ a kernel is built with on the architectures egress runs on.
constexpr std::array<uint32_t, 4> kAllowedHz = {100, 250, 300, 1000};
// Samples farther apart than this do not place an edge (the prober was
// descheduled between them).
constexpr uint64_t kEdgeGapNs = 100'000;
// Long enough for five edges at HZ=100.
constexpr uint64_t kWindowNs = 60'000'000;
constexpr size_t kMaxSamples = 200'000;
constexpr int kTries = 3;

struct ProbeDeleter {
  void operator()(clock_probe* p) const { clock_probe__destroy(p); }
};

absl::StatusOr<std::vector<ClockSample>> Sample() {
  std::unique_ptr<clock_probe, ProbeDeleter> skel(clock_probe__open());
  if (!skel) return ErrnoStatus(errno, "open BPF object", "clock_probe");
  if (int err = clock_probe__load(skel.get()); err != 0) {
    return ErrnoStatus(-err, "load BPF program", "clock_probe");
  }
  const int fd = bpf_program__fd(skel->progs.clock_sample);
  std::vector<ClockSample> out;
  out.reserve(kMaxSamples);
  while (out.size() < kMaxSamples) {
    egress_clock_sample s{};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &s, .ctx_size_in = sizeof(s));
    if (bpf_prog_test_run_opts(fd, &run) != 0) {
      return ErrnoStatus(errno, "BPF_PROG_TEST_RUN", "clock_probe");
    }
    out.push_back({s.jiffies, s.ktime_ns});
    if (s.ktime_ns - out.front().ktime_ns >= kWindowNs) break;
  }
  return out;
}

}  // namespace

uint64_t TickNsOfHz(uint32_t hz) { return (1'000'000'000ULL + hz / 2) / hz; }

absl::StatusOr<JiffiesClock> MapJiffies(absl::Span<const ClockSample> samples) {
  const ClockSample* first_edge = nullptr;
  const ClockSample* last_edge = nullptr;
  for (size_t i = 1; i < samples.size(); ++i) {
    const ClockSample& a = samples[i - 1];
    const ClockSample& b = samples[i];
    if (b.jiffies != a.jiffies + 1 || b.ktime_ns - a.ktime_ns > kEdgeGapNs) {
      continue;
    }
    if (first_edge == nullptr) first_edge = &b;
    last_edge = &b;
  }
  if (first_edge == nullptr || last_edge->jiffies - first_edge->jiffies < 2) {
    return absl::FailedPreconditionError(
        absl::StrCat("jiffies clock: ", samples.size(),
                     " probe runs saw fewer than two tick edges closely"));
  }
  const double tick_estimate =
      static_cast<double>(last_edge->ktime_ns - first_edge->ktime_ns) /
      static_cast<double>(last_edge->jiffies - first_edge->jiffies);
  JiffiesClock c;
  for (uint32_t hz : kAllowedHz) {
    const double tick = static_cast<double>(TickNsOfHz(hz));
    if (std::fabs(tick_estimate - tick) <= 0.05 * tick) {
      c.hz = hz;
      c.tick_ns = TickNsOfHz(hz);
    }
  }
  if (c.tick_ns == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("jiffies clock: a tick of ", std::llround(tick_estimate),
                     " ns is not that of HZ 100, 250, 300 or 1000"));
  }
  // Each sample's clock is at or after its tick edge (jiffies only lag):
  // the smallest ktime - (jiffies - j0) * tick is the edge of j0 as
  // closely as it was seen.
  c.j0 = samples.front().jiffies;
  uint64_t edge = UINT64_MAX;
  for (const ClockSample& s : samples) {
    edge = std::min(edge, s.ktime_ns - (s.jiffies - c.j0) * c.tick_ns);
  }
  c.t0_ns = edge - c.tick_ns / 2;
  return c;
}

absl::StatusOr<JiffiesClock> MeasureJiffiesClock() {
  absl::Status last;
  for (int i = 0; i < kTries; ++i) {
    EGRESS_ASSIGN_OR_RETURN(std::vector<ClockSample> samples, Sample());
    absl::StatusOr<JiffiesClock> c = MapJiffies(samples);
    if (c.ok()) return c;
    last = c.status();
  }
  return last;
}

namespace {

const absl::StatusOr<JiffiesClock>& Measured() {
  static const absl::StatusOr<JiffiesClock> c = MeasureJiffiesClock();
  return c;
}

}  // namespace

const JiffiesClock& KernelJiffiesClock() {
  static const JiffiesClock none;
  return Measured().ok() ? *Measured() : none;
}

std::string JiffiesClockWarning() {
  if (Measured().ok()) return "";
  return absl::StrCat(
      "WARNING: ", Measured().status().message(),
      "; connects to learned addresses read the clock by a helper call"
      " (slower, same decisions)");
}

}  // namespace egress
