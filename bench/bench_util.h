// Small helpers the benchmarks share: cgroup files, number formatting,
// clocks, medians and quantiles, and loopback addresses.
#ifndef EGRESS_BENCH_BENCH_UTIL_H_
#define EGRESS_BENCH_BENCH_UTIL_H_

#include <netinet/in.h>
#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress::bench {

// Writes `text` to an existing file (cgroup.procs, cgroup.kill, ...).
absl::Status WriteText(const std::string& path, absl::string_view text);

// Kills whatever is left in the cgroup `dir` and removes it, waiting up to
// 5 s for it to empty. A missing directory is fine.
absl::Status RemoveCgroup(const std::string& dir);

// 1234567 -> "1,234,567".
std::string WithCommas(uint64_t v);

// clock_gettime(clock) in ns (CLOCK_MONOTONIC is the clock of the BPF
// records' ktime_ns).
int64_t ClockNs(clockid_t clock);

// The median of `v` (the mean of the middle two for an even count); 0 when
// empty.
double Median(std::vector<double> v);

// Linear-interpolated quantile, q in [0, 1]; 0 when empty.
double Quantile(std::vector<double> v, double q);

// 127.0.0.1:port.
sockaddr_in Loopback(uint16_t port);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_BENCH_UTIL_H_
