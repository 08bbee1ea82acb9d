#include "bench/bench_dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "userspace/common/errno_status.h"

namespace egress::bench {
namespace {

constexpr size_t kHeader = 12;

absl::StatusOr<UniqueFd> UdpOn(uint16_t port, uint16_t* bound) {
  UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket", "bench responder");
  sockaddr_in a = Loopback(port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (errno == EADDRINUSE && port == 53) {
      return absl::FailedPreconditionError(
          "127.0.0.1:53 is taken: --mode=names answers its lookups there; "
          "stop the local resolver listening on it, or run on another host");
    }
    return ErrnoStatus(errno, "bind", "127.0.0.1");
  }
  socklen_t len = sizeof(a);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return ErrnoStatus(errno, "getsockname", "bench responder");
  }
  *bound = ntohs(a.sin_port);
  return fd;
}

// The answer to `q` (a query for one name): header with QR, RD, RA, one
// answer record pointing at the question's name: A 127.0.0.1, TTL 3600.
size_t Answer(const uint8_t* q, size_t n, uint8_t* out, size_t cap) {
  if (n < kHeader + 5 || n + 16 > cap) return 0;
  std::memcpy(out, q, n);
  out[2] = 0x81;  // QR, RD
  out[3] = 0x80;  // RA, NOERROR
  out[6] = 0;
  out[7] = 1;  // ANCOUNT
  out[8] = out[9] = out[10] = out[11] = 0;
  const uint8_t rr[16] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
                          0x0e, 0x10, 0, 4, 127, 0, 0, 1};
  std::memcpy(out + n, rr, sizeof(rr));
  return n + sizeof(rr);
}

}  // namespace

std::vector<uint8_t> BenchQuery(uint16_t id) {
  std::vector<uint8_t> m = {static_cast<uint8_t>(id >> 8),
                            static_cast<uint8_t>(id & 0xff),
                            0x01,
                            0x00,
                            0,
                            1,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0};
  for (absl::string_view label : absl::StrSplit(kBenchName, '.')) {
    m.push_back(static_cast<uint8_t>(label.size()));
    m.insert(m.end(), label.begin(), label.end());
  }
  m.insert(m.end(), {0, 0, 1, 0, 1});  // root, A, IN
  return m;
}

int Exchange(int fd, const std::vector<uint8_t>& query) {
  if (send(fd, query.data(), query.size(), 0) !=
      static_cast<ssize_t>(query.size())) {
    return errno ? errno : EIO;
  }
  uint8_t buf[512];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n < 0) return errno;
  if (n < 2 || buf[0] != query[0] || buf[1] != query[1]) return EPROTO;
  return 0;
}

absl::StatusOr<std::unique_ptr<DnsResponder>> DnsResponder::Start() {
  std::unique_ptr<DnsResponder> r(new DnsResponder());
  uint16_t dns_port = 0;
  auto dns = UdpOn(53, &dns_port);
  if (!dns.ok()) return dns.status();
  r->dns_ = *std::move(dns);
  auto echo = UdpOn(0, &r->echo_port_);
  if (!echo.ok()) return echo.status();
  r->echo_ = *std::move(echo);
  r->stop_ = UniqueFd(eventfd(0, EFD_CLOEXEC));
  if (!r->stop_) return ErrnoStatus(errno, "eventfd", "bench responder");
  r->thread_ = std::thread([p = r.get()] { p->Loop(); });
  return r;
}

DnsResponder::~DnsResponder() {
  uint64_t one = 1;
  if (stop_ && write(stop_.get(), &one, sizeof(one)) < 0) {
    // The thread cannot be woken: it still stops at its next poll timeout.
  }
  if (thread_.joinable()) thread_.join();
}

void DnsResponder::Loop() {
  uint8_t in[512], out[528];
  for (;;) {
    pollfd p[3] = {{dns_.get(), POLLIN, 0},
                   {echo_.get(), POLLIN, 0},
                   {stop_.get(), POLLIN, 0}};
    if (poll(p, 3, 1000) < 0 && errno != EINTR) return;
    if (p[2].revents) return;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & POLLIN)) continue;
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = recvfrom(p[i].fd, in, sizeof(in), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      const uint8_t* reply = in;
      size_t size = static_cast<size_t>(n);
      if (i == 0) {
        size = Answer(in, size, out, sizeof(out));
        reply = out;
        if (size == 0) continue;
      }
      sendto(p[i].fd, reply, size, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
}

}  // namespace egress::bench
