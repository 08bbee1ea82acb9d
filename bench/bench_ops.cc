#include "bench/bench_ops.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_dns.h"
#include "bench/bench_util.h"
#include "userspace/common/errno_status.h"

namespace egress::bench {
namespace {

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true, std::memory_order_relaxed); }

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}
int64_t NowNs() { return ClockNs(CLOCK_MONOTONIC); }
// CPU time of the (single-threaded) worker, including the loopback softirq
// work done in its context; time spent preempted by other tasks is not in it.
int64_t CpuNs() { return ClockNs(CLOCK_PROCESS_CPUTIME_ID); }

constexpr size_t kDatagramBytes = 32;
constexpr int64_t kChunkBytes = 64 * 1024;

struct Tally {
  int64_t ops = 0;
  int64_t unexpected = 0;
  int first_errno = 0;
  int64_t elapsed_ns = 0;
  int64_t cpu_ns = 0;

  void Unexpected(int err) {
    if (unexpected++ == 0) first_errno = err;
  }
};

// Calls `op` (returns true when the outcome was the expected one, else sets
// errno) until `max_ops` or `limits.max_time`, reading the clock every
// `check_every` operations.
template <typename F>
Tally TimedLoop(const OpLimits& limits, int check_every, F op) {
  Tally t;
  const int64_t cpu_start = CpuNs();
  const int64_t start = NowNs();
  const int64_t deadline = start + absl::ToInt64Nanoseconds(limits.max_time);
  for (; t.ops < limits.max_ops; ++t.ops) {
    if (t.ops % check_every == 0 &&
        (NowNs() >= deadline || g_stop.load(std::memory_order_relaxed))) {
      break;
    }
    if (!op()) t.Unexpected(errno);
  }
  t.elapsed_ns = NowNs() - start;
  t.cpu_ns = CpuNs() - cpu_start;
  return t;
}

// Returns 0 or the errno of the first failing call.
int ConnectClose(const sockaddr_in& dst, bool linger0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  if (linger0) {
    // RST on close: no TIME_WAIT, so ephemeral ports are never exhausted.
    linger l = {1, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) != 0) {
      int err = errno;
      close(fd);
      return err;
    }
  }
  int err = 0;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0) {
    err = errno;
  }
  close(fd);
  return err;
}

Tally RunConnect(const Endpoints& ep, const OpLimits& limits) {
  const sockaddr_in dst = Loopback(ep.tcp_connect);
  for (int i = 0; i < 50 && !g_stop; ++i) ConnectClose(dst, true);
  // Connect can stall for a SYN retransmit: read the clock every time.
  return TimedLoop(limits, 1, [&dst] {
    int err = ConnectClose(dst, true);
    errno = err;
    return err == 0;
  });
}

Tally RunDenied(const Endpoints& ep, const OpLimits& limits, bool enforced) {
  const sockaddr_in dst = Loopback(ep.closed);
  const int expected = enforced ? EPERM : ECONNREFUSED;
  for (int i = 0; i < 200 && !g_stop; ++i) ConnectClose(dst, false);
  return TimedLoop(limits, 16, [&dst, expected] {
    int err = ConnectClose(dst, false);
    errno = err;
    return err == expected;
  });
}

// The i-th of the new destinations of kDeniedNewDest, on the closed port:
// 127.1.0.0 onwards, below 127.255.0.0 (all loopback, nothing listens).
sockaddr_in NewDestination(uint32_t i, uint16_t port) {
  sockaddr_in dst = Loopback(port);
  dst.sin_addr.s_addr = htonl(0x7f010000u + i % 0x00fe0000u);
  return dst;
}

// Counts destinations across every slice of the worker: none repeats.
uint32_t g_new_dest = 0;

Tally RunDeniedNewDest(const Endpoints& ep, const OpLimits& limits,
                       bool enforced) {
  const int expected = enforced ? EPERM : ECONNREFUSED;
  for (int i = 0; i < 200 && !g_stop; ++i) {
    ConnectClose(NewDestination(g_new_dest++, ep.closed), false);
  }
  return TimedLoop(limits, 16, [&ep, expected] {
    int err = ConnectClose(NewDestination(g_new_dest++, ep.closed), false);
    errno = err;
    return err == expected;
  });
}

// A UDP socket connected to 127.0.0.1:port, answers awaited up to 1 s; -1
// with errno set on failure.
int ConnectedUdp(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv = {1, 0};
  const sockaddr_in dst = Loopback(port);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// Query and answer (port 53) or the same datagram echoed (another port).
Tally RunExchange(uint16_t port, const OpLimits& limits) {
  Tally bad;
  int fd = ConnectedUdp(port);
  if (fd < 0) {
    bad.Unexpected(errno);
    return bad;
  }
  uint16_t id = 1;
  auto one = [&] {
    int err = Exchange(fd, BenchQuery(id++));
    errno = err;
    return err == 0;
  };
  for (int i = 0; i < 100 && !g_stop; ++i) one();
  Tally t = TimedLoop(limits, 16, one);
  close(fd);
  return t;
}

Tally RunSendto(const Endpoints& ep, const OpLimits& limits) {
  Tally bad;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    bad.Unexpected(errno);
    return bad;
  }
  const sockaddr_in dst = Loopback(ep.udp_sink);
  char payload[kDatagramBytes] = "egress_bench";
  auto send_one = [&] {
    ssize_t n = sendto(fd, payload, sizeof(payload), 0,
                       reinterpret_cast<const sockaddr*>(&dst), sizeof(dst));
    if (n == static_cast<ssize_t>(sizeof(payload))) return true;
    if (n >= 0) errno = -1;
    return false;
  };
  for (int i = 0; i < 1000 && !g_stop; ++i) send_one();
  Tally t = TimedLoop(limits, 64, send_one);
  close(fd);
  return t;
}

Tally RunSendConnected(const Endpoints& ep, const OpLimits& limits) {
  Tally bad;
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const sockaddr_in dst = Loopback(ep.udp_sink);
  if (!fd || connect(fd.get(), reinterpret_cast<const sockaddr*>(&dst),
                     sizeof(dst)) != 0) {
    bad.Unexpected(errno);
    return bad;
  }
  char payload[kDatagramBytes] = "egress_bench";
  auto send_one = [&] {
    ssize_t n = send(fd.get(), payload, sizeof(payload), 0);
    if (n == static_cast<ssize_t>(sizeof(payload))) return true;
    if (n >= 0) errno = -1;
    return false;
  };
  for (int i = 0; i < 1000 && !g_stop; ++i) send_one();
  return TimedLoop(limits, 64, send_one);
}

// ---- the UDP server ops (kUdpRecv*, kUdpReply*) ----
//
// The measured socket is the server: bound to 127.0.0.1, created in the
// cgroup of its side on the side's first slice and kept for the worker's
// life, so that the peers it has seen stay known (udp_peers is keyed by the
// socket) as they do for a real server. The peers are senders (ports, at
// most kRecvSenders) x source addresses 127.2.x.y (IP_PKTINFO per
// datagram); the sender sockets are made in the baseline cgroup, so that no
// hook of the enforced side sees the sends. Each slice first queues
// limits.max_ops datagrams, cycling through the peers (untimed: the sends,
// and with them the delivery into the socket, skb_ingress included), then
// times recvfrom() of each. A side's first slice first sends every peer
// once and reads it back (untimed), so that the timed reads find a known
// peer as a busy server does.
//
// kUdpReply* time, per op, the same recvfrom() and then a sendto() of a
// 32-byte reply to the source address it returned. The replies go to the
// sender sockets (baseline cgroup), which nobody reads: their receive
// buffers are the smallest the kernel allows (SO_RCVBUF 0), so that a
// couple of replies queue and the rest are dropped on arrival, at the same
// cost on either side; each slice first empties them (untimed), so that
// every slice starts from the same state. No rule names the peers, so in the
// enforced cgroup every reply is allowed only as a known peer's (sendmsg4:
// rules, names, then udp_peers).
constexpr int kRecvSenders = 100;

bool TwoThreads(Op op) {
  return op == Op::kUdpRecv1kTwoThreads || op == Op::kUdpRecv100kTwoThreads ||
         op == Op::kUdpReply1kTwoThreads || op == Op::kUdpReply100kTwoThreads;
}

// One recvfrom() of a 32-byte datagram with its source address and, when
// `reply`, a sendto() of a 32-byte datagram back to that address; true when
// both worked (else errno is set; -1 for a short datagram).
bool ServeOne(int fd, bool reply) {
  char buf[kDatagramBytes];
  sockaddr_in from{};
  socklen_t len = sizeof(from);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&from), &len);
  if (n != static_cast<ssize_t>(sizeof(buf))) {
    if (n >= 0) errno = -1;
    return false;
  }
  if (!reply) return true;
  n = sendto(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), len);
  if (n == static_cast<ssize_t>(sizeof(buf))) return true;
  if (n >= 0) errno = -1;
  return false;
}
bool RecvOne(int fd) { return ServeOne(fd, false); }

// Two threads read the `queued` datagrams of `fd` at once (and reply to
// each when `reply`), each claiming a datagram before it reads, so that
// every read finds one (the queue holds as many as there are claims left),
// until all are read or the time bound.
Tally RecvTwoThreads(int fd, int64_t queued, const OpLimits& limits,
                     bool reply) {
  std::atomic<int64_t> claimed{0}, done{0}, unexpected{0};
  std::atomic<int> first_errno{0};
  const int64_t cpu_start = CpuNs();
  const int64_t start = NowNs();
  const int64_t deadline = start + absl::ToInt64Nanoseconds(limits.max_time);
  auto reader = [&] {
    for (int64_t i = 0;; ++i) {
      if (i % 64 == 0 &&
          (NowNs() >= deadline || g_stop.load(std::memory_order_relaxed))) {
        return;
      }
      if (claimed.fetch_add(1, std::memory_order_relaxed) >= queued) return;
      if (ServeOne(fd, reply)) {
        done.fetch_add(1, std::memory_order_relaxed);
      } else if (unexpected.fetch_add(1) == 0) {
        first_errno.store(errno);
      }
    }
  };
  std::thread second(reader);
  reader();
  second.join();
  Tally t;
  t.ops = done.load() + unexpected.load();
  t.unexpected = unexpected.load();
  t.first_errno = first_errno.load();
  t.elapsed_ns = NowNs() - start;
  t.cpu_ns = CpuNs() - cpu_start;
  // What the time bound left queued is read untimed: the next slice starts
  // from an empty socket.
  while (RecvOne(fd)) {
  }
  return t;
}

struct RecvServer {
  int fd = -1;
  sockaddr_in addr{};
  int64_t next_peer = 0;
};

struct RecvState {
  std::vector<int> senders;
  RecvServer side[2];  // [enforced]
};

RecvState& Recv() {
  static RecvState* state = new RecvState();
  return *state;
}

// Sends a 32-byte datagram from `fd` to `to` with the source address
// `source` (network order, IP_PKTINFO); true when it went.
bool SendFrom(int fd, uint32_t source, const sockaddr_in& to) {
  char payload[kDatagramBytes] = "egress_bench";
  iovec iov{payload, sizeof(payload)};
  char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_in*>(&to);
  msg.msg_namelen = sizeof(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo info{};
  info.ipi_spec_dst.s_addr = source;
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  return sendmsg(fd, &msg, 0) == static_cast<ssize_t>(sizeof(payload));
}

// Sends datagram number `i` of `peers` distinct peers to `to`.
bool SendAsPeer(const RecvState& st, int64_t i, int peers,
                const sockaddr_in& to) {
  const int64_t peer = i % peers;
  const int senders = static_cast<int>(st.senders.size());
  const uint32_t addr_index = static_cast<uint32_t>(peer / senders);
  return SendFrom(st.senders[peer % senders],
                  htonl(0x7f020000 + addr_index),  // 127.2.x.y
                  to);
}

// Queues `n` datagrams on `server`, then reads them (untimed).
int64_t FillAndDrain(RecvState& st, RecvServer& server, int peers, int64_t n) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!SendAsPeer(st, server.next_peer++, peers, server.addr)) ++bad;
  }
  char buf[kDatagramBytes];
  sockaddr_in from{};
  for (int64_t i = 0; i < n; ++i) {
    socklen_t len = sizeof(from);
    if (recvfrom(server.fd, buf, sizeof(buf), MSG_DONTWAIT,
                 reinterpret_cast<sockaddr*>(&from), &len) < 0) {
      ++bad;
    }
  }
  return bad;
}

// kUdpRecv* and kUdpReply*.
Tally RunUdpServer(Op op, bool enforced_side, const OpLimits& limits) {
  Tally bad;
  RecvState& st = Recv();
  const int peers = PeersOf(op);
  if (st.senders.empty()) {
    // The worker's first slice is a baseline one (RunInterleaved).
    if (enforced_side) {
      bad.Unexpected(EINVAL);
      return bad;
    }
    for (int i = 0; i < std::min(peers, kRecvSenders); ++i) {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      // The smallest receive buffer: replies (kUdpReply*) are dropped, not
      // piled up.
      int rcvbuf = 0;
      if (fd < 0 ||
          setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) {
        bad.Unexpected(errno);
        if (fd >= 0) close(fd);
        return bad;
      }
      st.senders.push_back(fd);
    }
  }
  const bool reply = RepliesToPeers(op);
  if (reply) {
    char buf[kDatagramBytes];
    for (int fd : st.senders) {
      while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
      }
    }
  }
  RecvServer& server = st.side[enforced_side ? 1 : 0];
  // A batch of max_ops datagrams of 32 bytes takes about 1 KiB each of
  // receive buffer.
  const int64_t batch = limits.max_ops;
  if (server.fd < 0) {
    server.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcvbuf = 64 << 20;
    server.addr = Loopback(0);
    socklen_t len = sizeof(server.addr);
    if (server.fd < 0 ||
        setsockopt(server.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
                   sizeof(rcvbuf)) != 0 ||
        bind(server.fd, reinterpret_cast<sockaddr*>(&server.addr),
             sizeof(server.addr)) != 0 ||
        getsockname(server.fd, reinterpret_cast<sockaddr*>(&server.addr),
                    &len) != 0) {
      bad.Unexpected(errno);
      return bad;
    }
    for (int64_t done = 0; done < peers && !g_stop; done += batch) {
      if (FillAndDrain(st, server, peers,
                       std::min<int64_t>(batch, peers - done)) > 0) {
        bad.Unexpected(EIO);
        return bad;
      }
    }
  }
  for (int64_t i = 0; i < batch && !g_stop; ++i) {
    if (!SendAsPeer(st, server.next_peer++, peers, server.addr)) {
      bad.Unexpected(errno);
      return bad;
    }
  }
  if (TwoThreads(op)) return RecvTwoThreads(server.fd, batch, limits, reply);
  return TimedLoop(limits, 64, [&] { return ServeOne(server.fd, reply); });
}

Tally RunBulk(const Endpoints& ep, const OpLimits& limits) {
  Tally bad;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    bad.Unexpected(errno);
    return bad;
  }
  const sockaddr_in dst = Loopback(ep.tcp_bulk);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0) {
    bad.Unexpected(errno);
    close(fd);
    return bad;
  }
  std::vector<char> chunk(static_cast<size_t>(kChunkBytes), 'x');
  bool broken = false;
  auto write_chunk = [&] {
    if (broken) return false;  // Stop hammering a dead connection.
    size_t done = 0;
    while (done < chunk.size()) {
      ssize_t n = write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        broken = true;
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  };
  for (int i = 0; i < 256 && !g_stop; ++i) write_chunk();  // 16 MiB
  // max_ops counts KiB; the loop counts chunks.
  OpLimits chunks = {limits.max_ops / (kChunkBytes / 1024), limits.max_time};
  Tally t = TimedLoop(chunks, 1, write_chunk);
  t.ops *= kChunkBytes / 1024;
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
  return t;
}

}  // namespace

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }

absl::Status CancelledIfStopped() {
  return StopRequested() ? absl::CancelledError("stopped") : absl::OkStatus();
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kTcpConnect:
      return "tcp connect+close";
    case Op::kUdpSendto:
      return "udp sendto 32B";
    case Op::kUdpSendConnected:
      return "udp send connected 32B";
    case Op::kDeniedConnect:
      return "denied connect";
    case Op::kDeniedNewDest:
      return "denied, new dest";
    case Op::kTcpBulk:
      return "tcp bulk write";
    case Op::kDnsLookup:
      return "dns query+answer";
    case Op::kUdpEcho:
      return "udp echo (no dns)";
    case Op::kUdpRecv1:
      return "udp recv 1 peer";
    case Op::kUdpRecv1k:
      return "udp recv 1k peers";
    case Op::kUdpRecv100k:
      return "udp recv 100k peers";
    case Op::kUdpRecv1kTwoThreads:
      return "udp recv 1k peers, 2 thr";
    case Op::kUdpRecv100kTwoThreads:
      return "udp recv 100k peers, 2 thr";
    case Op::kUdpReply1:
      return "udp reply 1 peer";
    case Op::kUdpReply1k:
      return "udp reply 1k peers";
    case Op::kUdpReply100k:
      return "udp reply 100k peers";
    case Op::kUdpReply1kTwoThreads:
      return "udp reply 1k peers, 2 thr";
    case Op::kUdpReply100kTwoThreads:
      return "udp reply 100k peers, 2 thr";
  }
  return "?";
}

const char* OpUnit(Op op) { return op == Op::kTcpBulk ? "MiB/s" : "ops/s"; }

OpLimits LimitsOf(Op op, double time_scale) {
  auto scaled = [time_scale](double seconds) {
    return absl::Seconds(seconds * time_scale);
  };
  switch (op) {
    case Op::kTcpConnect:
      return {20000, scaled(0.15)};
    case Op::kUdpSendto:
    case Op::kUdpSendConnected:
      return {300000, scaled(0.1)};
    case Op::kDeniedConnect:
    case Op::kDeniedNewDest:
      return {100000, scaled(0.1)};
    case Op::kTcpBulk:
      return {int64_t{1} << 18, scaled(0.15)};  // 256 MiB, in KiB
    case Op::kDnsLookup:
    case Op::kUdpEcho:
      return {100000, scaled(0.1)};
    case Op::kUdpRecv1:
    case Op::kUdpRecv1k:
    case Op::kUdpRecv100k:
    case Op::kUdpRecv1kTwoThreads:
    case Op::kUdpRecv100kTwoThreads:
    case Op::kUdpReply1:
    case Op::kUdpReply1k:
    case Op::kUdpReply100k:
    case Op::kUdpReply1kTwoThreads:
    case Op::kUdpReply100kTwoThreads:
      // The batch queued before each timed slice (RunUdpServer).
      return {20000, scaled(0.2)};
  }
  return {0, absl::ZeroDuration()};
}

int PeersOf(Op op) {
  switch (op) {
    case Op::kUdpRecv1:
    case Op::kUdpReply1:
      return 1;
    case Op::kUdpRecv1k:
    case Op::kUdpRecv1kTwoThreads:
    case Op::kUdpReply1k:
    case Op::kUdpReply1kTwoThreads:
      return 1000;
    case Op::kUdpRecv100k:
    case Op::kUdpRecv100kTwoThreads:
    case Op::kUdpReply100k:
    case Op::kUdpReply100kTwoThreads:
      return 100000;
    default:
      return 0;
  }
}

bool RepliesToPeers(Op op) {
  return op == Op::kUdpReply1 || op == Op::kUdpReply1k ||
         op == Op::kUdpReply100k || op == Op::kUdpReply1kTwoThreads ||
         op == Op::kUdpReply100kTwoThreads;
}

double Sample::Rate() const {
  double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(ops) / seconds : 0;
}

double Sample::CpuRate() const {
  double seconds = absl::ToDoubleSeconds(cpu);
  return seconds > 0 ? static_cast<double>(ops) / seconds : 0;
}

namespace {

// `enforced`: the slice runs in the enforced cgroup; `refuses`: the
// programs there refuse the denied connect.
Tally RunSlice(Op op, const Endpoints& ep, bool enforced, bool refuses,
               const OpLimits& limits) {
  switch (op) {
    case Op::kTcpConnect:
      return RunConnect(ep, limits);
    case Op::kUdpSendto:
      return RunSendto(ep, limits);
    case Op::kUdpSendConnected:
      return RunSendConnected(ep, limits);
    case Op::kDeniedConnect:
      return RunDenied(ep, limits, enforced && refuses);
    case Op::kDeniedNewDest:
      return RunDeniedNewDest(ep, limits, enforced && refuses);
    case Op::kTcpBulk:
      return RunBulk(ep, limits);
    case Op::kDnsLookup:
      return RunExchange(ep.dns, limits);
    case Op::kUdpEcho:
      return RunExchange(ep.udp_echo, limits);
    case Op::kUdpRecv1:
    case Op::kUdpRecv1k:
    case Op::kUdpRecv100k:
    case Op::kUdpRecv1kTwoThreads:
    case Op::kUdpRecv100kTwoThreads:
    case Op::kUdpReply1:
    case Op::kUdpReply1k:
    case Op::kUdpReply100k:
    case Op::kUdpReply1kTwoThreads:
    case Op::kUdpReply100kTwoThreads:
      return RunUdpServer(op, enforced, limits);
  }
  return Tally();
}

// Moves the calling process into `cgroup`; 0 or errno.
int MoveSelf(const std::string& cgroup) {
  std::string procs = cgroup + "/cgroup.procs";
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  std::string pid = std::to_string(getpid());
  int err = 0;
  if (write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    err = errno;
  }
  close(fd);
  return err;
}

// side, ops, wall microseconds, cpu microseconds, unexpected, errno
constexpr int kValuesPerSlice = 6;

}  // namespace

std::vector<int> RunInterleaved(Op op, const Endpoints& ep,
                                const std::string& baseline_cgroup,
                                const std::string& enforced_cgroup, int pairs,
                                double time_scale, bool refuses) {
  const OpLimits limits = LimitsOf(op, time_scale);
  std::vector<int> out;
  for (int p = 0; p < pairs && !g_stop; ++p) {
    const bool enforced_first = p % 2 == 1;
    for (bool enforced : {enforced_first, !enforced_first}) {
      if (int err = MoveSelf(enforced ? enforced_cgroup : baseline_cgroup);
          err != 0) {
        // side -1: could not move; errno in the last field.
        out.insert(out.end(), {-1, 0, 0, 0, 0, err});
        return out;
      }
      Tally t = RunSlice(op, ep, enforced, refuses, limits);
      // Microseconds fit an int for any bounded loop (35 minutes).
      out.insert(out.end(), {enforced ? 1 : 0, static_cast<int>(t.ops),
                             static_cast<int>(t.elapsed_ns / 1000),
                             static_cast<int>(t.cpu_ns / 1000),
                             static_cast<int>(t.unexpected), t.first_errno});
    }
  }
  return out;
}

absl::StatusOr<Slices> DecodeSlices(const std::vector<int>& values) {
  if (values.size() % kValuesPerSlice != 0) {
    return absl::InternalError(
        absl::StrCat("worker sent ", values.size(), " values"));
  }
  Slices slices;
  for (size_t i = 0; i < values.size(); i += kValuesPerSlice) {
    if (values[i] < 0) {
      return absl::InternalError(
          absl::StrCat("worker could not move between cgroups: ",
                       std::strerror(values[i + 5])));
    }
    Sample s;
    s.ops = values[i + 1];
    s.elapsed = absl::Microseconds(values[i + 2]);
    s.cpu = absl::Microseconds(values[i + 3]);
    s.unexpected = values[i + 4];
    s.first_errno = values[i + 5];
    (values[i] == 1 ? slices.enforced : slices.baseline).push_back(s);
  }
  return slices;
}

namespace {

// ProbeOnce of kUdpReply*: a server socket of the caller's cgroup gets a
// datagram from `sender` as 127.2.255.1 (beyond the rows' peers) and
// replies to it; the reply must reach `sender`.
int ProbeReply(int sender) {
  if (sender < 0) return EBADF;
  char buf[kDatagramBytes];
  while (recv(sender, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
  }
  UniqueFd server(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (!server ||
      bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      getsockname(server.get(), reinterpret_cast<sockaddr*>(&addr), &len) !=
          0) {
    return errno;
  }
  if (!SendFrom(sender, htonl(0x7f02ff01), addr)) return errno;
  // Loopback delivers within the sendmsg: the datagram is queued by now.
  if (!ServeOne(server.get(), true)) return errno > 0 ? errno : EIO;
  sockaddr_in from{};
  len = sizeof(from);
  if (recvfrom(sender, buf, sizeof(buf), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&from),
               &len) != static_cast<ssize_t>(sizeof(buf)) ||
      from.sin_port != addr.sin_port) {
    return EIO;
  }
  return 0;
}

}  // namespace

int ProbeOnce(Op op, const Endpoints& ep) {
  switch (op) {
    case Op::kTcpConnect:
      return ConnectClose(Loopback(ep.tcp_connect), true);
    case Op::kDeniedConnect:
      return ConnectClose(Loopback(ep.closed), false);
    case Op::kDeniedNewDest:
      return ConnectClose(NewDestination(g_new_dest++, ep.closed), false);
    case Op::kTcpBulk:
      return ConnectClose(Loopback(ep.tcp_bulk), true);
    case Op::kDnsLookup:
    case Op::kUdpEcho: {
      int fd = ConnectedUdp(op == Op::kDnsLookup ? ep.dns : ep.udp_echo);
      if (fd < 0) return errno;
      int err = Exchange(fd, BenchQuery(0x4242));
      close(fd);
      return err;
    }
    case Op::kUdpRecv1:
    case Op::kUdpRecv1k:
    case Op::kUdpRecv100k:
    case Op::kUdpRecv1kTwoThreads:
    case Op::kUdpRecv100kTwoThreads:
      // Nothing to refuse: a server may always read. Each read checks its
      // own outcome (RunUdpServer).
      return 0;
    case Op::kUdpReply1:
    case Op::kUdpReply1k:
    case Op::kUdpReply100k:
    case Op::kUdpReply1kTwoThreads:
    case Op::kUdpReply100kTwoThreads:
      return ProbeReply(ep.reply_probe);
    case Op::kUdpSendConnected: {
      UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!fd) return errno;
      sockaddr_in dst = Loopback(ep.udp_sink);
      if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&dst),
                  sizeof(dst)) != 0) {
        return errno;
      }
      return send(fd.get(), "x", 1, 0) == 1 ? 0 : errno;
    }
    case Op::kUdpSendto: {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return errno;
      sockaddr_in dst = Loopback(ep.udp_sink);
      int err = sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&dst),
                       sizeof(dst)) == 1
                    ? 0
                    : errno;
      close(fd);
      return err;
    }
  }
  return EINVAL;
}

namespace {

// A socket bound to 127.0.0.1 on a kernel-chosen port.
absl::StatusOr<UniqueFd> BoundSocket(int type, uint16_t* port) {
  UniqueFd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket", "loopback server");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(0);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind", "127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "getsockname", "loopback server");
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoopbackServers>> LoopbackServers::Start() {
  std::unique_ptr<LoopbackServers> s(new LoopbackServers());
  auto tcp = BoundSocket(SOCK_STREAM, &s->ep_.tcp_connect);
  if (!tcp.ok()) return tcp.status();
  s->tcp_listener_ = *std::move(tcp);
  auto bulk = BoundSocket(SOCK_STREAM, &s->ep_.tcp_bulk);
  if (!bulk.ok()) return bulk.status();
  s->bulk_listener_ = *std::move(bulk);
  auto udp = BoundSocket(SOCK_DGRAM, &s->ep_.udp_sink);
  if (!udp.ok()) return udp.status();
  s->udp_sink_ = *std::move(udp);
  // Bound, never listening: holds the port so that nobody else listens there.
  auto closed = BoundSocket(SOCK_STREAM, &s->ep_.closed);
  if (!closed.ok()) return closed.status();
  s->closed_ = *std::move(closed);
  // The peer of the kUdpReply* probes: bound to every address, so that it
  // gets the replies sent to 127.2.255.1.
  s->reply_probe_ = UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in any{};
  any.sin_family = AF_INET;
  if (!s->reply_probe_ ||
      bind(s->reply_probe_.get(), reinterpret_cast<sockaddr*>(&any),
           sizeof(any)) != 0) {
    return ErrnoStatus(errno, "bind", "0.0.0.0:0 (reply probe)");
  }
  s->ep_.reply_probe = s->reply_probe_.get();
  // A small receive buffer: the sink drops datagrams right away instead of
  // first queueing a few hundred.
  int rcvbuf = 4096;
  setsockopt(s->udp_sink_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
             sizeof(rcvbuf));
  if (listen(s->tcp_listener_.get(), 4096) != 0 ||
      listen(s->bulk_listener_.get(), 16) != 0) {
    return ErrnoStatus(errno, "listen", "127.0.0.1");
  }
  s->accept_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  s->bulk_thread_ = std::thread([p = s.get()] { p->BulkLoop(); });
  return s;
}

LoopbackServers::~LoopbackServers() {
  stopping_ = true;
  // shutdown() wakes a thread blocked in accept() or read().
  if (tcp_listener_) shutdown(tcp_listener_.get(), SHUT_RDWR);
  if (bulk_listener_) shutdown(bulk_listener_.get(), SHUT_RDWR);
  if (int c = bulk_conn_.load(); c >= 0) shutdown(c, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (bulk_thread_.joinable()) bulk_thread_.join();
}

void LoopbackServers::AcceptLoop() {
  while (!stopping_) {
    int fd = accept4(tcp_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      close(fd);
    } else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
      if (stopping_) break;
      usleep(1000);  // EMFILE and the like: back off rather than spin.
    }
  }
}

void LoopbackServers::BulkLoop() {
  std::vector<char> buf(1 << 20);
  while (!stopping_) {
    int fd = accept4(bulk_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) break;
      if (errno != EINTR && errno != ECONNABORTED) usleep(1000);
      continue;
    }
    bulk_conn_ = fd;
    if (stopping_) shutdown(fd, SHUT_RDWR);  // Raced with the destructor.
    while (true) {
      ssize_t n = read(fd, buf.data(), buf.size());
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    bulk_conn_ = -1;
    close(fd);
  }
}

}  // namespace egress::bench
