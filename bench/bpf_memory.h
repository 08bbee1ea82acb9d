// The kernel memory of the BPF programs and maps reachable from a pin
// directory (egressd's --bpffs): every pinned map, every pinned program and
// the program of every pinned link, each counted once, with the `memlock`
// the kernel reports for it in /proc/self/fdinfo (what bpftool shows as
// bytes_memlock). Objects egressd holds only by file descriptor are not
// seen; everything that enforces while egressd is down is.
#ifndef EGRESS_BENCH_BPF_MEMORY_H_
#define EGRESS_BENCH_BPF_MEMORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace egress::bench {

struct BpfMemory {
  int progs = 0, maps = 0, links = 0;
  uint64_t prog_bytes = 0, map_bytes = 0;
};

absl::StatusOr<BpfMemory> BpfMemoryBelow(const std::string& pin_dir);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_BPF_MEMORY_H_
