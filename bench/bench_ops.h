// The measured operations of egress_bench and the loopback servers they talk
// to. Every loop is bounded in count and in time and stops early on SIGINT or
// SIGTERM (StopRequested()). Only 127.0.0.1 is used.
#ifndef EGRESS_BENCH_BENCH_OPS_H_
#define EGRESS_BENCH_BENCH_OPS_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {

// SIGINT/SIGTERM set a flag (inherited by forked workers) instead of killing
// the process, so that cleanup runs.
void InstallStopHandlers();

// The main() of a benchmark: stop handlers, `parse`, `run`; exit 2 for bad
// arguments, 130 when stopped by a signal, 1 for other errors.
template <typename Options>
int BenchMain(const char* name, int argc, char** argv,
              absl::StatusOr<Options> (*parse)(int, char**),
              absl::Status (*run)(const Options&)) {
  InstallStopHandlers();
  absl::StatusOr<Options> opts = parse(argc, argv);
  if (!opts.ok()) {
    std::fprintf(stderr, "%s: %s\n", name,
                 std::string(opts.status().message()).c_str());
    return 2;
  }
  absl::Status status = run(*opts);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, status.ToString().c_str());
    return absl::IsCancelled(status) ? 130 : 1;
  }
  return 0;
}
bool StopRequested();
// Cancelled ("stopped") once StopRequested(), else OK: for loops that
// return a Status.
absl::Status CancelledIfStopped();

enum class Op {
  kTcpConnect,  // socket + SO_LINGER{1,0} + connect + close, allowed
  kUdpSendto,   // sendto of a 32-byte datagram on one socket, allowed
  // send() of a 32-byte datagram on a UDP socket connected (allowed) once
  // per slice: no sock_addr hook runs per datagram, cgroup_skb egress does.
  kUdpSendConnected,
  kDeniedConnect,  // socket + connect + close to a port no rule allows
  // The same to a new destination every time (127.1.0.0-127.254.255.255,
  // never repeated within a run): no rate limit holds its record back, so
  // every refusal pays for one.
  kDeniedNewDest,
  kTcpBulk,  // 64 KiB write()s on one connection; ops are KiB
  // --mode=names (bench_dns.h): on one connected UDP socket, a query to the
  // responder on 127.0.0.1:53 and its answer; the same datagram to the echo
  // server and back (no DNS port: the packet hooks pass it at once).
  kDnsLookup,
  kUdpEcho,
  // A UDP server's recvfrom() (with the source address, so recvmsg4 runs)
  // of 32-byte datagrams from 1, 1,000 or 100,000 distinct loopback peers
  // (RunUdpServer in bench_ops.cc).
  kUdpRecv1,
  kUdpRecv1k,
  kUdpRecv100k,
  // The same from 1,000 and 100,000 peers with two threads of the server
  // reading the one socket at once (a multi-threaded server).
  kUdpRecv1kTwoThreads,
  kUdpRecv100kTwoThreads,
  // The same server answering: per op a recvfrom() of one datagram from 1,
  // 1,000 or 100,000 peers and a sendto() of a 32-byte reply to the address
  // it came from, on the unconnected socket (as a DNS server does). No rule
  // names the peers: each reply is allowed as a known peer's (sendmsg4:
  // rules, then udp_peers). Alone and with two threads of the server.
  kUdpReply1,
  kUdpReply1k,
  kUdpReply100k,
  kUdpReply1kTwoThreads,
  kUdpReply100kTwoThreads,
};
inline constexpr Op kAllOps[] = {Op::kTcpConnect,
                                 Op::kUdpSendto,
                                 Op::kUdpSendConnected,
                                 Op::kDeniedConnect,
                                 Op::kDeniedNewDest,
                                 Op::kTcpBulk,
                                 Op::kUdpRecv1,
                                 Op::kUdpRecv1k,
                                 Op::kUdpRecv100k,
                                 Op::kUdpRecv1kTwoThreads,
                                 Op::kUdpRecv100kTwoThreads,
                                 Op::kUdpReply1,
                                 Op::kUdpReply1k,
                                 Op::kUdpReply100k,
                                 Op::kUdpReply1kTwoThreads,
                                 Op::kUdpReply100kTwoThreads};
inline constexpr Op kNameOps[] = {Op::kTcpConnect, Op::kDnsLookup,
                                  Op::kUdpEcho};

struct OpLimits {
  int64_t max_ops;
  absl::Duration max_time;
};
const char* OpName(Op op);
// "ops/s" or "MiB/s".
const char* OpUnit(Op op);
OpLimits LimitsOf(Op op, double time_scale);
// The distinct peers of a UDP server op (kUdpRecv*, kUdpReply*), else 0.
int PeersOf(Op op);
// A UDP server op that replies to each datagram (kUdpReply*).
bool RepliesToPeers(Op op);
// The peers' source addresses: 127.2.x.y (IP_PKTINFO), loopback only.
inline constexpr char kPeerNetwork[] = "127.2.0.0/16";

// Ports (host order) on 127.0.0.1.
struct Endpoints {
  uint16_t tcp_connect = 0;  // listener; accepted and closed at once
  uint16_t tcp_bulk = 0;     // listener; read and discarded
  uint16_t udp_sink = 0;     // bound UDP socket nobody reads
  uint16_t closed = 0;       // bound TCP socket, not listening: RST
  uint16_t dns = 0;          // --mode=names: the responder (53)
  uint16_t udp_echo = 0;     // --mode=names: the echo server
  // A UDP socket of the benchmark process (outside the measured cgroups)
  // that sends as a peer for the probe of kUdpReply* and gets the reply.
  int reply_probe = -1;
};

// One measurement: `ops` operations (KiB for kTcpBulk) in `elapsed` wall
// time, of which the worker was on a CPU for `cpu`.
// `unexpected` counts operations whose outcome differed from the expected
// one (first_errno is the first such errno; -1 = short write).
struct Sample {
  int64_t ops = 0;
  absl::Duration elapsed;
  absl::Duration cpu;
  int64_t unexpected = 0;
  int first_errno = 0;

  double Rate() const;     // ops per second (KiB/s for kTcpBulk)
  double CpuRate() const;  // ops per second of worker CPU time
};

// Runs in the worker process: `pairs` pairs of slices of `op`, one slice in
// each cgroup per pair, moving itself between the cgroups (by writing its pid
// to their cgroup.procs) before each slice; the first side alternates between
// pairs. Sockets take the cgroup of their creator, so every slice opens its
// own sockets after moving, then warms up untimed. In the enforced cgroup
// kDeniedConnect must give EPERM, elsewhere ECONNREFUSED. The result is
// encoded for RunInCgroupMulti; DecodeSlices reverses it.
// `refuses`: the denied connect gets EPERM in the enforced cgroup (false
// when the programs there let the worker through, --mode=users).
std::vector<int> RunInterleaved(Op op, const Endpoints& ep,
                                const std::string& baseline_cgroup,
                                const std::string& enforced_cgroup, int pairs,
                                double time_scale, bool refuses = true);

struct Slices {
  std::vector<Sample> baseline, enforced;  // in pair order
};
absl::StatusOr<Slices> DecodeSlices(const std::vector<int>& values);

// One loopback probe, for sanity checks: 0 or the errno of connect/sendto.
// kUdpReply*: a server socket made by the caller (so in its cgroup) gets a
// datagram from ep.reply_probe as a peer in kPeerNetwork and replies; 0
// when the reply arrived, else the errno of the reply's sendto (EIO: sent
// but never arrived).
int ProbeOnce(Op op, const Endpoints& ep);

// The listeners and sinks of Endpoints, served by threads of this process
// (which is outside the measured cgroups).
class LoopbackServers {
 public:
  static absl::StatusOr<std::unique_ptr<LoopbackServers>> Start();
  ~LoopbackServers();  // Stops and joins the threads.

  const Endpoints& endpoints() const { return ep_; }

 private:
  LoopbackServers() = default;
  void AcceptLoop();
  void BulkLoop();

  Endpoints ep_;
  UniqueFd tcp_listener_, bulk_listener_, udp_sink_, closed_, reply_probe_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> bulk_conn_{-1};
  std::thread accept_thread_, bulk_thread_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_BENCH_OPS_H_
