// One-shot socket probes for enforcement tests. Each probe opens its own
// socket(s), does one thing, closes everything and returns 0 on success or the
// positive errno of the first failing step. Every wait is bounded by
// kProbeTimeout (2 s); a timeout returns ETIMEDOUT.
//
// Probes are async-signal-agnostic plain syscalls: they are meant to run in a
// RunInCgroup child. Addresses are numeric strings: "127.0.0.2", "::1",
// "::ffff:127.0.0.1". An unparsable address returns EINVAL and logs to stderr.
//
// Convention for tests against closed loopback ports: "allowed" is 0 or
// ECONNREFUSED, "denied" is EPERM (what cgroup/connect and cgroup/sendmsg
// programs return).
#ifndef EGRESS_TESTS_TESTING_SOCKET_PROBES_H_
#define EGRESS_TESTS_TESTING_SOCKET_PROBES_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace egress {
namespace testing {

inline constexpr absl::Duration kProbeTimeout = absl::Seconds(2);

// A parsed numeric address and port. family() is AF_INET or AF_INET6 (IPv4-
// mapped IPv6 addresses stay AF_INET6).
struct SockAddr {
  sockaddr_storage storage = {};
  socklen_t len = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
};
absl::StatusOr<SockAddr> ParseSockAddr(absl::string_view addr, uint16_t port);

// sockaddr_in for a dotted IPv4 address; sin_family is AF_INET. An invalid
// address yields INADDR_NONE (255.255.255.255) and a message on stderr.
sockaddr_in MakeSockaddrIn(const std::string& v4_addr, uint16_t port);

// ---- TCP ----
// Non-blocking connect + poll. Socket family follows the address.
int TcpConnect(const std::string& addr, uint16_t port);
// AF_INET6 socket with IPV6_V6ONLY=0 connecting to ::ffff:<v4_addr>.
int TcpConnectDualStack(const std::string& v4_addr, uint16_t port);
// sendto(MSG_FASTOPEN) on an unconnected socket, then waits for the handshake.
int TcpFastOpenSendto(const std::string& addr, uint16_t port);
// setsockopt(TCP_FASTOPEN_CONNECT) + connect() (deferred: returns at once) +
// send(), then waits for the handshake.
int TcpFastOpenConnectOpt(const std::string& addr, uint16_t port);
// socket(AF_INET/6, SOCK_STREAM, IPPROTO_MPTCP) + connect. If socket() fails
// (EPROTONOSUPPORT: no MPTCP in the kernel; ENOPROTOOPT: net.mptcp.enabled=0)
// that errno is returned so the caller can skip.
int MptcpConnect(const std::string& addr, uint16_t port);
// io_uring IORING_OP_CONNECT on a blocking socket; returns -cqe->res.
// io_uring_queue_init failures (e.g. EPERM from kernel.io_uring_disabled) are
// returned as their errno.
int IoUringConnect(const std::string& addr, uint16_t port);

// ---- UDP ---- (sends one small datagram; a closed port still returns 0)
int UdpSendto(const std::string& addr, uint16_t port);
// sendmsg() of `payload` on `fd` to `dst`, from the IPv4 source address
// `source` (network order) set per datagram with IP_PKTINFO: one socket can
// so play many peers on loopback. True when the whole payload was sent.
bool UdpSendFromSource(int fd, const sockaddr* dst, socklen_t dst_len,
                       in_addr source, absl::string_view payload);
// AF_INET6 socket passing an AF_INET sockaddr_in to sendto(): the kernel hands
// it to the IPv4 path (udpv6_sendmsg -> udp_sendmsg).
int UdpSendtoFromV6Socket(const sockaddr_in& dst);
int UdpSendtoFromV6Socket(const std::string& v4_addr, uint16_t port);
// AF_INET socket, sockaddr_in with sin_family = AF_UNSPEC (accepted by
// udp_sendmsg as if it were AF_INET).
int UdpSendtoUnspec(const std::string& v4_addr, uint16_t port);
// connect() then send(); connect's errno if it fails.
int UdpConnectThenSend(const std::string& addr, uint16_t port);
// What glibc's getaddrinfo() does to sort a name's addresses (RFC 6724):
// connect() then getsockname(), and no datagram. errno of either, or 0.
int UdpConnectNoSend(const std::string& addr, uint16_t port);
// connect() to `first`:`first_port`, connect() again to `addr`:`port`, then
// send(); errno of the first failing call, or 0.
int UdpReconnectThenSend(const std::string& first, uint16_t first_port,
                         const std::string& addr, uint16_t port);
// connect() then sendto() with the connected address given again (the
// sendmsg hooks see that send); errno or 0.
int UdpConnectThenSendtoSame(const std::string& addr, uint16_t port);
// sendmmsg() of n datagrams (1..1024); 0 only if all n were sent.
int UdpSendmmsg(const std::string& addr, uint16_t port, int n);
// io_uring IORING_OP_SENDMSG with msg_name set (unconnected UDP socket).
int IoUringUdpSendmsg(const std::string& addr, uint16_t port);

// ---- socket creation ----
// socket(family, SOCK_RAW, IPPROTO_UDP): errno of socket() or 0.
int RawSocket(int family);
// socket(family, SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6). Fails with EACCES
// unless the caller's gid is in net.ipv4.ping_group_range (also used for v6).
int PingSocket(int family);
// socket(AF_PACKET, SOCK_RAW, 0): protocol 0 so it never receives anything.
int PacketSocket();

// ---- ICMP ----
// Ping socket for the address family, sendto() of one echo request without
// connect(). Needs EnsurePingAllowed().
int PingSendto(const std::string& addr);
// Writes "0 2147483647" to /proc/sys/net/ipv4/ping_group_range of the
// caller's network namespace so that root (any gid) may open ping sockets.
// Returns the previous value (e.g. "1\t0", the kernel default that allows
// nobody) for RestorePingGroupRange(); callers that don't restore leave the
// sysctl widened until reboot.
absl::StatusOr<std::string> EnsurePingAllowed();
absl::Status RestorePingGroupRange(const std::string& previous);

// ---- source routing ----
enum class RoutingHeaderType : uint8_t {
  kType0 = 0,           // Deprecated (RFC 5095); Linux rejects it: EINVAL.
  kType2 = 2,           // Mobile IPv6; needs CONFIG_IPV6_MIP6.
  kSegmentRouting = 4,  // SRv6 SRH (sticky option only, not as a cmsg).
};
// AF_INET6 UDP socket; setsockopt(IPPROTO_IPV6, IPV6_RTHDR) with a header
// whose next hop is ::1. Returns the errno of setsockopt.
int Ipv6RoutingHeaderSetsockopt(
    RoutingHeaderType type = RoutingHeaderType::kSegmentRouting);
// Same sticky option with next hop `via_addr`, then sendto(addr, port): the
// kernel sends the packet to `via_addr` first. errno of the first failure.
int Ipv6RoutingHeaderStickySend(
    const std::string& addr, uint16_t port, const std::string& via_addr,
    RoutingHeaderType type = RoutingHeaderType::kSegmentRouting);
// sendmsg(addr, port) with an IPV6_RTHDR cmsg routing via `via_addr`. The
// kernel only accepts type 2 here (and only with CONFIG_IPV6_MIP6).
int Ipv6RoutingHeaderCmsgSend(
    const std::string& addr, uint16_t port, const std::string& via_addr,
    RoutingHeaderType type = RoutingHeaderType::kType2);
// AF_INET UDP socket; setsockopt(IPPROTO_IP, IP_OPTIONS) with a loose (lsrr)
// or strict source route of one hop (`hop`). errno of setsockopt.
int Ipv4SourceRouteSetsockopt(bool lsrr, const std::string& hop = "127.0.0.1");
// Sticky LSRR option via setsockopt, then sendto(addr, port): the packet goes
// to `hop` first. errno of the first failure.
int Ipv4SourceRouteStickySend(const std::string& addr, uint16_t port,
                              const std::string& hop);
// sendmsg(addr, port) with an IP_RETOPTS cmsg carrying an LSRR via `hop`.
// errno of sendmsg.
int Ipv4SourceRouteCmsgSend(const std::string& addr, uint16_t port,
                            const std::string& hop);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_SOCKET_PROBES_H_
