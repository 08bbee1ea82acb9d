#include "tests/testing/listeners.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace testing {
namespace {

constexpr size_t kMaxClients = 64;
constexpr int kLoopPollMs = 1000;  // Only a safety net; stop_ wakes the loop.

absl::StatusOr<UniqueFd> MakeEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return ErrnoStatus(errno, "eventfd", "listener stop signal");
  return fd;
}

void Signal(int eventfd) {
  uint64_t one = 1;
  ssize_t ignored = ::write(eventfd, &one, sizeof(one));
  (void)ignored;
}

bool WaitFor(const std::atomic<int>& counter, int n, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (counter.load() < n) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

}  // namespace

absl::StatusOr<UniqueFd> BindSocket(int type, const std::string& addr,
                                    uint16_t port) {
  EGRESS_ASSIGN_OR_RETURN(SockAddr sa, ParseSockAddr(addr, port));
  std::string what = absl::StrCat(addr, ":", port);
  UniqueFd fd(::socket(sa.family(), type | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket", what);
  if (sa.family() == AF_INET6) {
    // "::" means both families, whatever net.ipv6.bindv6only says.
    int off = 0;
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off))) {
      return ErrnoStatus(errno, "setsockopt(IPV6_V6ONLY)", what);
    }
  }
  if (::bind(fd.get(), sa.get(), sa.len) != 0) {
    return ErrnoStatus(errno, "bind", what);
  }
  return fd;
}

absl::StatusOr<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoStatus(errno, "getsockname", absl::StrCat("fd ", fd));
  }
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// ---- TcpListener ----

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Create(
    const std::string& addr, uint16_t port, Mode mode) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(SOCK_STREAM, addr, port));
  return FromBoundSocket(std::move(fd), mode);
}

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::FromBoundSocket(
    UniqueFd fd, Mode mode) {
  if (::listen(fd.get(), 128) != 0) {
    return ErrnoStatus(errno, "listen", "TcpListener");
  }
  EGRESS_ASSIGN_OR_RETURN(uint16_t port, LocalPort(fd.get()));
  EGRESS_ASSIGN_OR_RETURN(UniqueFd stop, MakeEventFd());
  return std::unique_ptr<TcpListener>(
      new TcpListener(std::move(fd), std::move(stop), port, mode));
}

TcpListener::TcpListener(UniqueFd fd, UniqueFd stop, uint16_t port, Mode mode)
    : fd_(std::move(fd)), stop_(std::move(stop)), port_(port), mode_(mode) {
  thread_ = std::thread([this] { Loop(); });
}

TcpListener::~TcpListener() {
  Signal(stop_.get());
  thread_.join();
}

bool TcpListener::WaitForAccepted(int n, absl::Duration timeout) const {
  return WaitFor(accepted_, n, timeout);
}

void TcpListener::Loop() {
  std::vector<UniqueFd> clients;
  char buf[4096];
  while (true) {
    std::vector<pollfd> pfds = {{stop_.get(), POLLIN, 0},
                                {fd_.get(), POLLIN, 0}};
    for (const UniqueFd& c : clients) pfds.push_back({c.get(), POLLIN, 0});
    int pr = ::poll(pfds.data(), pfds.size(), kLoopPollMs);
    if (pr < 0 && errno != EINTR) return;
    if (pr <= 0) continue;
    if (pfds[0].revents != 0) return;
    // Clients first: accepting shifts nothing because new ones go at the end.
    for (size_t i = pfds.size(); i-- > 2;) {
      if (pfds[i].revents == 0) continue;
      UniqueFd& c = clients[i - 2];
      ssize_t n = ::recv(c.get(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        bytes_ += n;
        if (mode_ == Mode::kEcho) {
          // Best effort, non-blocking: a client that does not read loses data.
          ssize_t ignored = ::send(c.get(), buf, static_cast<size_t>(n),
                                   MSG_DONTWAIT | MSG_NOSIGNAL);
          (void)ignored;
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        clients.erase(clients.begin() + static_cast<ptrdiff_t>(i - 2));
      }
    }
    if (pfds[1].revents & POLLIN) {
      UniqueFd c(
          ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (c) {
        ++accepted_;
        if (clients.size() < kMaxClients) clients.push_back(std::move(c));
      }
    }
  }
}

// ---- UdpEchoServer ----

absl::StatusOr<std::unique_ptr<UdpEchoServer>> UdpEchoServer::Create(
    const std::string& addr, uint16_t port) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(SOCK_DGRAM, addr, port));
  return FromBoundSocket(std::move(fd));
}

absl::StatusOr<std::unique_ptr<UdpEchoServer>> UdpEchoServer::FromBoundSocket(
    UniqueFd fd) {
  EGRESS_ASSIGN_OR_RETURN(uint16_t port, LocalPort(fd.get()));
  EGRESS_ASSIGN_OR_RETURN(UniqueFd stop, MakeEventFd());
  return std::unique_ptr<UdpEchoServer>(
      new UdpEchoServer(std::move(fd), std::move(stop), port));
}

UdpEchoServer::UdpEchoServer(UniqueFd fd, UniqueFd stop, uint16_t port)
    : fd_(std::move(fd)), stop_(std::move(stop)), port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

UdpEchoServer::~UdpEchoServer() {
  Signal(stop_.get());
  thread_.join();
}

bool UdpEchoServer::WaitForDatagrams(int n, absl::Duration timeout) const {
  return WaitFor(datagrams_, n, timeout);
}

void UdpEchoServer::Loop() {
  char buf[65536];
  while (true) {
    pollfd pfds[2] = {{stop_.get(), POLLIN, 0}, {fd_.get(), POLLIN, 0}};
    int pr = ::poll(pfds, 2, kLoopPollMs);
    if (pr < 0 && errno != EINTR) return;
    if (pr <= 0) continue;
    if (pfds[0].revents != 0) return;
    sockaddr_storage from = {};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) continue;  // EAGAIN, or a queued ICMP error: keep serving.
    ++datagrams_;
    ssize_t ignored = ::sendto(fd_.get(), buf, static_cast<size_t>(n),
                               MSG_DONTWAIT | MSG_NOSIGNAL,
                               reinterpret_cast<sockaddr*>(&from), from_len);
    (void)ignored;
  }
}

// ---- ReservedPort ----

absl::StatusOr<std::unique_ptr<ReservedPort>> ReservedPort::Create(int type) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(type, "::", 0));
  EGRESS_ASSIGN_OR_RETURN(uint16_t port, LocalPort(fd.get()));
  return std::unique_ptr<ReservedPort>(new ReservedPort(std::move(fd), port));
}

// ---- UdpClientExpectReply ----

int UdpClientExpectReply(const std::string& server_addr, uint16_t port) {
  absl::StatusOr<SockAddr> dst = ParseSockAddr(server_addr, port);
  if (!dst.ok()) return EINVAL;
  UniqueFd fd(::socket(dst->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  static constexpr char kPing[] = "egress-echo";
  if (::sendto(fd.get(), kPing, sizeof(kPing) - 1, MSG_NOSIGNAL, dst->get(),
               dst->len) < 0) {
    return errno;
  }
  absl::Time deadline = absl::Now() + kProbeTimeout;
  char buf[256];
  while (true) {
    int ms =
        static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return ETIMEDOUT;
    pollfd pfd = {fd.get(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (pr == 0) return ETIMEDOUT;
    sockaddr_storage from = {};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd.get(), buf, sizeof(buf), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return errno;  // E.g. ECONNREFUSED is not reported on unconnected UDP.
    }
    // Only a reply from the server's port counts.
    uint16_t from_port =
        from.ss_family == AF_INET
            ? ntohs(reinterpret_cast<sockaddr_in*>(&from)->sin_port)
            : ntohs(reinterpret_cast<sockaddr_in6*>(&from)->sin6_port);
    if (from_port == port) return 0;
  }
}

int BoundUdpServer(uint32_t addr, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -errno;
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(port);
  me.sin_addr.s_addr = htonl(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) {
    const int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

}  // namespace testing
}  // namespace egress
