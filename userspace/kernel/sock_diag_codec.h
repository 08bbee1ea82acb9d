// The sock_diag netlink messages egressd sends and reads, as pure functions
// on byte buffers (no sockets): a SOCK_DIAG_BY_FAMILY dump request, a
// SOCK_DESTROY request for one socket, and the parsing of what the kernel
// answers. sock_diag.h does the I/O.
//
// Kernel behaviour relied on (net/ipv4/inet_diag.c, tcp_diag.c, udp_diag.c):
//   - every full socket's reply carries INET_DIAG_CGROUP_ID (u64, the cgroup
//     v2 id of the socket's cgroup, kernel 5.7+) without being asked;
//   - a UDP socket is dumped in state TCP_ESTABLISHED once connected;
//   - SOCK_DESTROY finds the socket by the inet_diag_sockid of its dump
//     (addresses, ports, interface and cookie), so echoing that id destroys
//     exactly that socket and never a later one reusing the ports.
#ifndef EGRESS_USERSPACE_KERNEL_SOCK_DIAG_CODEC_H_
#define EGRESS_USERSPACE_KERNEL_SOCK_DIAG_CODEC_H_

#include <linux/inet_diag.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace egress {

// One socket of a dump.
struct DiagSocket {
  uint8_t family = 0;     // AF_INET or AF_INET6
  uint8_t protocol = 0;   // IPPROTO_TCP or IPPROTO_UDP (that of the dump)
  uint8_t state = 0;      // TCP_* (a connected UDP socket: TCP_ESTABLISHED)
  inet_diag_sockid id{};  // as the kernel sent it (network byte order)
  uint32_t uid = 0;
  uint32_t inode = 0;
  std::optional<uint64_t> cgroup_id;  // INET_DIAG_CGROUP_ID

  // The ports in host order and the addresses as 16 bytes (IPv4 in the
  // first 4, as the kernel lays them out).
  uint16_t source_port() const;
  uint16_t destination_port() const;
  std::array<uint8_t, 16> source() const;
  std::array<uint8_t, 16> destination() const;
  // The socket cookie (what SOCK_DESTROY checks).
  uint64_t cookie() const;
};

// A SOCK_DIAG_BY_FAMILY dump request (NLM_F_REQUEST | NLM_F_DUMP) for the
// sockets of `family` and `protocol` in the states of the `states` bit mask
// (1 << TCP_ESTABLISHED, ...), with sequence number `seq`.
std::vector<uint8_t> DumpRequest(uint8_t family, uint8_t protocol,
                                 uint32_t states, uint32_t seq);

// A SOCK_DESTROY request (NLM_F_REQUEST | NLM_F_ACK) for `socket`.
std::vector<uint8_t> DestroyRequest(const DiagSocket& socket, uint32_t seq);

// What one datagram of a dump holds.
struct DiagBatch {
  std::vector<DiagSocket> sockets;
  bool done = false;  // NLMSG_DONE was in it: the dump is complete
};

// Parses one received datagram of the dump with sequence number `seq`;
// `protocol` is the dump's (replies do not carry it). Messages of another
// sequence are skipped. Errors:
//   InvalidArgument  a message shorter than its header or than it claims,
//                    or a reply shorter than inet_diag_msg;
//   the errno's code an NLMSG_ERROR (or a negative NLMSG_DONE) carries,
//                    e.g. PermissionDenied, naming "sock_diag dump".
absl::StatusOr<DiagBatch> ParseDump(absl::Span<const uint8_t> datagram,
                                    uint8_t protocol, uint32_t seq);

// Parses the acknowledgement of a request with sequence number `seq`: OK
// for an NLMSG_ERROR with error 0, the errno's status otherwise (NotFound:
// the socket is gone), InvalidArgument when no acknowledgement is in it.
absl::Status ParseAck(absl::Span<const uint8_t> datagram, uint32_t seq);

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_SOCK_DIAG_CODEC_H_
