// DNS for egress_bench --mode=names: a responder on 127.0.0.1:53 that answers
// every A question with 127.0.0.1 (TTL one hour), and a UDP echo server on
// 127.0.0.1 for the non-DNS datagram of the same size to compare with. Both
// are served by one thread of the benchmark process (outside the measured
// cgroups). Nothing leaves loopback, and no lookup goes to the machine's
// resolver: the worker sends its queries straight to the responder.
#ifndef EGRESS_BENCH_BENCH_DNS_H_
#define EGRESS_BENCH_BENCH_DNS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {

// The name the benchmark's name rule allows and the responder answers.
inline constexpr char kBenchName[] = "bench.egress.test";

// A query (RD set) for kBenchName, type A, transaction id `id`.
std::vector<uint8_t> BenchQuery(uint16_t id);

// One exchange on a UDP socket connected to a responder: sends `query`,
// waits (SO_RCVTIMEO of the socket) for a reply with the same id. 0 or the
// errno (EPROTO: a reply of another id or too short).
int Exchange(int fd, const std::vector<uint8_t>& query);

class DnsResponder {
 public:
  // FailedPrecondition naming the port when 127.0.0.1:53 is taken.
  static absl::StatusOr<std::unique_ptr<DnsResponder>> Start();
  ~DnsResponder();  // Stops and joins the thread.

  uint16_t echo_port() const { return echo_port_; }

 private:
  DnsResponder() = default;
  void Loop();

  UniqueFd dns_, echo_, stop_;
  uint16_t echo_port_ = 0;
  std::thread thread_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_BENCH_DNS_H_
