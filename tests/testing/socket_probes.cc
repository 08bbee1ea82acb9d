#include "tests/testing/socket_probes.h"

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/file_util.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {
namespace {

constexpr char kPayload[] = "egress-probe";
constexpr size_t kPayloadLen = sizeof(kPayload) - 1;
constexpr int kIpprotoMptcp = 262;  // Not in bookworm's glibc headers.
constexpr char kPingGroupRange[] = "/proc/sys/net/ipv4/ping_group_range";
constexpr int kProbeTimeoutMs = 2000;  // kProbeTimeout.

int Errno() { return errno != 0 ? errno : EIO; }

// Parses or logs; returns false for a bad literal.
bool Parse(const std::string& addr, uint16_t port, SockAddr* out) {
  absl::StatusOr<SockAddr> parsed = ParseSockAddr(addr, port);
  if (!parsed.ok()) {
    std::fprintf(stderr, "socket_probes: %s\n",
                 parsed.status().ToString().c_str());
    return false;
  }
  *out = *parsed;
  return true;
}

// Waits for a non-blocking connect (or TFO send) to finish; returns SO_ERROR.
int WaitConnected(int fd) {
  pollfd pfd = {fd, POLLOUT, 0};
  int pr;
  do {
    pr = ::poll(&pfd, 1, kProbeTimeoutMs);
  } while (pr < 0 && errno == EINTR);
  if (pr < 0) return Errno();
  if (pr == 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return Errno();
  return err;
}

int ConnectAndWait(int fd, const SockAddr& dst) {
  if (::connect(fd, dst.get(), dst.len) == 0) return 0;
  if (errno != EINPROGRESS) return Errno();
  return WaitConnected(fd);
}

int StreamConnect(const std::string& addr, uint16_t port, int protocol) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       protocol));
  if (!fd) return Errno();
  return ConnectAndWait(fd.get(), dst);
}

int SendOne(int fd, const sockaddr* dst, socklen_t len) {
  ssize_t n = ::sendto(fd, kPayload, kPayloadLen, MSG_NOSIGNAL, dst, len);
  if (n < 0) return Errno();
  return static_cast<size_t>(n) == kPayloadLen ? 0 : EMSGSIZE;
}

// Routing header bytes: next hop `via`, final destination `final_dst`.
std::vector<uint8_t> BuildRoutingHeader(RoutingHeaderType type,
                                        const in6_addr& via,
                                        const in6_addr& final_dst) {
  std::vector<uint8_t> hdr;
  if (type == RoutingHeaderType::kSegmentRouting) {
    // struct ipv6_sr_hdr + segments[2]; segments are stored last hop first,
    // and segments[segments_left] is the next hop.
    hdr.assign(8 + 2 * sizeof(in6_addr), 0);
    hdr[0] = 0;  // nexthdr: filled in by the kernel.
    hdr[1] = 4;  // hdrlen: (8 + 32) / 8 - 1.
    hdr[2] = 4;  // type.
    hdr[3] = 1;  // segments_left.
    hdr[4] = 1;  // first_segment (index of the last entry).
    std::memcpy(&hdr[8], &final_dst, sizeof(in6_addr));
    std::memcpy(&hdr[8 + sizeof(in6_addr)], &via, sizeof(in6_addr));
    return hdr;
  }
  // Type 0 / type 2 layout: ipv6_rt_hdr, 4 reserved bytes, one address.
  hdr.assign(8 + sizeof(in6_addr), 0);
  hdr[1] = 2;  // hdrlen: (8 + 16) / 8 - 1.
  hdr[2] = static_cast<uint8_t>(type);
  hdr[3] = 1;  // segments_left.
  std::memcpy(&hdr[8], &via, sizeof(in6_addr));
  return hdr;
}

// IPv4 LSRR (0x83) or SSRR (0x89) option with one hop, padded with EOL.
std::vector<uint8_t> BuildSourceRoute(bool lsrr, const in_addr& hop) {
  std::vector<uint8_t> opt(8, 0);
  opt[0] = lsrr ? uint8_t{IPOPT_LSRR} : uint8_t{IPOPT_SSRR};
  opt[1] = 7;  // type + len + ptr + one address.
  opt[2] = 4;  // ptr: first address.
  std::memcpy(&opt[3], &hop, sizeof(hop));
  opt[7] = IPOPT_END;
  return opt;
}

bool ParseV4(const std::string& addr, in_addr* out) {
  if (::inet_pton(AF_INET, addr.c_str(), out) == 1) return true;
  std::fprintf(stderr, "socket_probes: '%s' is not an IPv4 address\n",
               addr.c_str());
  return false;
}

bool ParseV6(const std::string& addr, in6_addr* out) {
  if (::inet_pton(AF_INET6, addr.c_str(), out) == 1) return true;
  std::fprintf(stderr, "socket_probes: '%s' is not an IPv6 address\n",
               addr.c_str());
  return false;
}

// Runs one prepared SQE on a fresh ring; returns -cqe->res or an errno.
template <typename Prep>
int IoUringOne(Prep prep) {
  io_uring ring;
  int ret = io_uring_queue_init(4, &ring, 0);
  if (ret < 0) return -ret;
  int result;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) {
    result = EBUSY;
  } else {
    prep(sqe);
    ret = io_uring_submit(&ring);
    if (ret < 0) {
      result = -ret;
    } else {
      __kernel_timespec ts = {};
      ts.tv_sec = absl::ToInt64Seconds(kProbeTimeout);
      io_uring_cqe* cqe = nullptr;
      do {
        ret = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
      } while (ret == -EINTR);
      if (ret == -ETIME) {
        result = ETIMEDOUT;  // queue_exit cancels the request.
      } else if (ret < 0) {
        result = -ret;
      } else {
        result = -cqe->res;
        if (result < 0) result = 0;  // Positive res: bytes sent.
        io_uring_cqe_seen(&ring, cqe);
      }
    }
  }
  io_uring_queue_exit(&ring);
  return result;
}

}  // namespace

absl::StatusOr<SockAddr> ParseSockAddr(absl::string_view addr, uint16_t port) {
  SockAddr out;
  std::string text(addr);
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, text.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  out.storage = {};
  if (::inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "parse address '", addr, "': not a numeric IPv4/IPv6 address"));
}

sockaddr_in MakeSockaddrIn(const std::string& v4_addr, uint16_t port) {
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (!ParseV4(v4_addr, &sin.sin_addr)) sin.sin_addr.s_addr = INADDR_NONE;
  return sin;
}

int TcpConnect(const std::string& addr, uint16_t port) {
  return StreamConnect(addr, port, 0);
}

int TcpConnectDualStack(const std::string& v4_addr, uint16_t port) {
  in_addr v4;
  if (!ParseV4(v4_addr, &v4)) return EINVAL;
  SockAddr dst;
  if (!Parse(absl::StrCat("::ffff:", v4_addr), port, &dst)) return EINVAL;
  UniqueFd fd(
      ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  int off = 0;
  if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off))) {
    return Errno();
  }
  return ConnectAndWait(fd.get(), dst);
}

int TcpFastOpenSendto(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(
      ::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  ssize_t n = ::sendto(fd.get(), kPayload, kPayloadLen,
                       MSG_FASTOPEN | MSG_NOSIGNAL, dst.get(), dst.len);
  if (n < 0 && errno != EINPROGRESS && errno != EAGAIN) return Errno();
  return WaitConnected(fd.get());
}

int TcpFastOpenConnectOpt(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(
      ::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  int on = 1;
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on,
                   sizeof(on)) != 0) {
    return Errno();
  }
  if (::connect(fd.get(), dst.get(), dst.len) != 0) {
    if (errno != EINPROGRESS) return Errno();
    return WaitConnected(fd.get());
  }
  // Deferred connect: the SYN (with data if a cookie is cached) leaves now.
  ssize_t n = ::send(fd.get(), kPayload, kPayloadLen, MSG_NOSIGNAL);
  if (n < 0 && errno != EINPROGRESS && errno != EAGAIN) return Errno();
  return WaitConnected(fd.get());
}

int MptcpConnect(const std::string& addr, uint16_t port) {
  return StreamConnect(addr, port, kIpprotoMptcp);
}

int IoUringConnect(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  return IoUringOne([&](io_uring_sqe* sqe) {
    io_uring_prep_connect(sqe, fd.get(), dst.get(), dst.len);
  });
}

bool UdpSendFromSource(int fd, const sockaddr* dst, socklen_t dst_len,
                       in_addr source, absl::string_view payload) {
  char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(dst);
  msg.msg_namelen = dst_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo info{};
  info.ipi_spec_dst = source;
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  return sendmsg(fd, &msg, 0) == static_cast<ssize_t>(payload.size());
}

int UdpSendto(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  return SendOne(fd.get(), dst.get(), dst.len);
}

int UdpSendtoFromV6Socket(const sockaddr_in& dst) {
  UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  return SendOne(fd.get(), reinterpret_cast<const sockaddr*>(&dst),
                 sizeof(dst));
}

int UdpSendtoFromV6Socket(const std::string& v4_addr, uint16_t port) {
  in_addr v4;
  if (!ParseV4(v4_addr, &v4)) return EINVAL;
  return UdpSendtoFromV6Socket(MakeSockaddrIn(v4_addr, port));
}

int UdpSendtoUnspec(const std::string& v4_addr, uint16_t port) {
  sockaddr_in dst = {};
  if (!ParseV4(v4_addr, &dst.sin_addr)) return EINVAL;
  dst.sin_family = AF_UNSPEC;
  dst.sin_port = htons(port);
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  return SendOne(fd.get(), reinterpret_cast<const sockaddr*>(&dst),
                 sizeof(dst));
}

int UdpConnectThenSend(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  if (::connect(fd.get(), dst.get(), dst.len) != 0) return Errno();
  return SendOne(fd.get(), nullptr, 0);
}

int UdpConnectNoSend(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  if (::connect(fd.get(), dst.get(), dst.len) != 0) return Errno();
  sockaddr_storage source = {};
  socklen_t len = sizeof(source);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&source), &len) !=
      0) {
    return Errno();
  }
  return 0;
}

int UdpReconnectThenSend(const std::string& first, uint16_t first_port,
                         const std::string& addr, uint16_t port) {
  SockAddr before, dst;
  if (!Parse(first, first_port, &before) || !Parse(addr, port, &dst)) {
    return EINVAL;
  }
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  if (::connect(fd.get(), before.get(), before.len) != 0) return Errno();
  if (::connect(fd.get(), dst.get(), dst.len) != 0) return Errno();
  return SendOne(fd.get(), nullptr, 0);
}

int UdpConnectThenSendtoSame(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  if (::connect(fd.get(), dst.get(), dst.len) != 0) return Errno();
  return SendOne(fd.get(), dst.get(), dst.len);
}

int UdpSendmmsg(const std::string& addr, uint16_t port, int n) {
  if (n < 1 || n > 1024) return EINVAL;
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  iovec iov = {const_cast<char*>(kPayload), kPayloadLen};
  std::vector<mmsghdr> msgs(static_cast<size_t>(n));
  for (mmsghdr& m : msgs) {
    m = {};
    m.msg_hdr.msg_name = const_cast<sockaddr_storage*>(&dst.storage);
    m.msg_hdr.msg_namelen = dst.len;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  // Each call sends at least one message or fails, so this is bounded by n.
  size_t sent = 0;
  while (sent < msgs.size()) {
    int r = ::sendmmsg(fd.get(), msgs.data() + sent,
                       static_cast<unsigned>(msgs.size() - sent), MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno();
    }
    if (r == 0) return EIO;
    sent += static_cast<size_t>(r);
  }
  return 0;
}

int IoUringUdpSendmsg(const std::string& addr, uint16_t port) {
  SockAddr dst;
  if (!Parse(addr, port, &dst)) return EINVAL;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  iovec iov = {const_cast<char*>(kPayload), kPayloadLen};
  msghdr msg = {};
  msg.msg_name = &dst.storage;
  msg.msg_namelen = dst.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return IoUringOne([&](io_uring_sqe* sqe) {
    io_uring_prep_sendmsg(sqe, fd.get(), &msg, 0);
  });
}

int RawSocket(int family) {
  UniqueFd fd(::socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
  return fd ? 0 : Errno();
}

int PingSocket(int family) {
  int protocol = family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, protocol));
  return fd ? 0 : Errno();
}

int PacketSocket() {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  return fd ? 0 : Errno();
}

int PingSendto(const std::string& addr) {
  SockAddr dst;
  if (!Parse(addr, 0, &dst)) return EINVAL;
  bool v6 = dst.family() == AF_INET6;
  UniqueFd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC,
                       v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!fd) return Errno();
  // type, code, checksum, id, sequence: the kernel fills in id and checksum.
  uint8_t packet[8 + kPayloadLen] = {};
  packet[0] = v6 ? uint8_t{ICMP6_ECHO_REQUEST} : uint8_t{ICMP_ECHO};
  packet[7] = 1;  // Sequence 1.
  std::memcpy(packet + 8, kPayload, kPayloadLen);
  ssize_t n = ::sendto(fd.get(), packet, sizeof(packet), MSG_NOSIGNAL,
                       dst.get(), dst.len);
  if (n < 0) return Errno();
  return 0;
}

absl::StatusOr<std::string> EnsurePingAllowed() {
  absl::StatusOr<std::string> previous = ReadFile(kPingGroupRange);
  if (!previous.ok()) return previous.status();
  while (!previous->empty() && previous->back() == '\n') previous->pop_back();
  absl::Status status = WriteFile(kPingGroupRange, "0 2147483647");
  if (!status.ok()) return status;
  return previous;
}

absl::Status RestorePingGroupRange(const std::string& previous) {
  return WriteFile(kPingGroupRange, previous);
}

int Ipv6RoutingHeaderSetsockopt(RoutingHeaderType type) {
  UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  std::vector<uint8_t> hdr =
      BuildRoutingHeader(type, in6addr_loopback, in6addr_loopback);
  if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RTHDR, hdr.data(),
                   static_cast<socklen_t>(hdr.size())) != 0) {
    return Errno();
  }
  return 0;
}

int Ipv6RoutingHeaderStickySend(const std::string& addr, uint16_t port,
                                const std::string& via_addr,
                                RoutingHeaderType type) {
  SockAddr dst;
  in6_addr via;
  if (!Parse(addr, port, &dst) || !ParseV6(via_addr, &via)) return EINVAL;
  if (dst.family() != AF_INET6) return EAFNOSUPPORT;
  UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&dst.storage);
  std::vector<uint8_t> hdr = BuildRoutingHeader(type, via, sin6->sin6_addr);
  if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RTHDR, hdr.data(),
                   static_cast<socklen_t>(hdr.size())) != 0) {
    return Errno();
  }
  return SendOne(fd.get(), dst.get(), dst.len);
}

int Ipv6RoutingHeaderCmsgSend(const std::string& addr, uint16_t port,
                              const std::string& via_addr,
                              RoutingHeaderType type) {
  SockAddr dst;
  in6_addr via;
  if (!Parse(addr, port, &dst) || !ParseV6(via_addr, &via)) return EINVAL;
  if (dst.family() != AF_INET6) return EAFNOSUPPORT;
  UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&dst.storage);
  std::vector<uint8_t> hdr = BuildRoutingHeader(type, via, sin6->sin6_addr);
  std::vector<uint8_t> control(CMSG_SPACE(hdr.size()), 0);
  iovec iov = {const_cast<char*>(kPayload), kPayloadLen};
  msghdr msg = {};
  msg.msg_name = &dst.storage;
  msg.msg_namelen = dst.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = IPPROTO_IPV6;
  cmsg->cmsg_type = IPV6_RTHDR;
  cmsg->cmsg_len = CMSG_LEN(hdr.size());
  std::memcpy(CMSG_DATA(cmsg), hdr.data(), hdr.size());
  if (::sendmsg(fd.get(), &msg, MSG_NOSIGNAL) < 0) return Errno();
  return 0;
}

int Ipv4SourceRouteSetsockopt(bool lsrr, const std::string& hop) {
  in_addr hop_addr;
  if (!ParseV4(hop, &hop_addr)) return EINVAL;
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  std::vector<uint8_t> opt = BuildSourceRoute(lsrr, hop_addr);
  if (::setsockopt(fd.get(), IPPROTO_IP, IP_OPTIONS, opt.data(),
                   static_cast<socklen_t>(opt.size())) != 0) {
    return Errno();
  }
  return 0;
}

int Ipv4SourceRouteStickySend(const std::string& addr, uint16_t port,
                              const std::string& hop) {
  in_addr hop_addr;
  sockaddr_in dst = {};
  if (!ParseV4(hop, &hop_addr) || !ParseV4(addr, &dst.sin_addr)) return EINVAL;
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  std::vector<uint8_t> opt = BuildSourceRoute(/*lsrr=*/true, hop_addr);
  if (::setsockopt(fd.get(), IPPROTO_IP, IP_OPTIONS, opt.data(),
                   static_cast<socklen_t>(opt.size())) != 0) {
    return Errno();
  }
  return SendOne(fd.get(), reinterpret_cast<const sockaddr*>(&dst),
                 sizeof(dst));
}

int Ipv4SourceRouteCmsgSend(const std::string& addr, uint16_t port,
                            const std::string& hop) {
  in_addr hop_addr;
  sockaddr_in dst = {};
  if (!ParseV4(hop, &hop_addr) || !ParseV4(addr, &dst.sin_addr)) return EINVAL;
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Errno();
  std::vector<uint8_t> opt = BuildSourceRoute(/*lsrr=*/true, hop_addr);
  std::vector<uint8_t> control(CMSG_SPACE(opt.size()), 0);
  iovec iov = {const_cast<char*>(kPayload), kPayloadLen};
  msghdr msg = {};
  msg.msg_name = &dst;
  msg.msg_namelen = sizeof(dst);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = IPPROTO_IP;
  cmsg->cmsg_type = IP_RETOPTS;
  cmsg->cmsg_len = CMSG_LEN(opt.size());
  std::memcpy(CMSG_DATA(cmsg), opt.data(), opt.size());
  if (::sendmsg(fd.get(), &msg, MSG_NOSIGNAL) < 0) return Errno();
  return 0;
}

}  // namespace testing
}  // namespace egress
