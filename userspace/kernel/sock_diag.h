// A NETLINK_SOCK_DIAG socket: dumps the TCP/UDP sockets of egressd's network
// namespace (with each socket's cgroup id) and destroys single sockets
// (SOCK_DESTROY, CONFIG_INET_DIAG_DESTROY: a TCP peer gets a reset, the
// local socket reports ECONNABORTED, a UDP one is disconnected). The messages
// are built and parsed by sock_diag_codec.h; this is only the I/O, every wait
// bounded.
#ifndef EGRESS_USERSPACE_KERNEL_SOCK_DIAG_H_
#define EGRESS_USERSPACE_KERNEL_SOCK_DIAG_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/sock_diag_codec.h"

namespace egress {

struct SocketDump {
  std::vector<DiagSocket> sockets;
  bool truncated = false;  // stopped at the limit; more sockets exist
};

class SockDiag {
 public:
  // Opens the netlink socket. Errors: socket()'s errno as a Status
  // ("socket(NETLINK_SOCK_DIAG): ...").
  static absl::StatusOr<SockDiag> Open();

  // The sockets of `family` (AF_INET, AF_INET6) and `protocol`
  // (IPPROTO_TCP, IPPROTO_UDP) in the states of the bit mask `states`, at
  // most `max_sockets` (then `truncated`; this socket must not be used for
  // another dump). Bounded: each receive waits at most 1 s and the whole
  // dump at most `deadline` (DeadlineExceeded "sock_diag dump: ..."); the
  // kernel's errors as ParseDump reports them.
  absl::StatusOr<SocketDump> Dump(uint8_t family, uint8_t protocol,
                                  uint32_t states, size_t max_sockets,
                                  absl::Duration deadline = absl::Seconds(5));

  // Destroys `socket` (as dumped). NotFound when it is gone (closed, or a
  // different socket now has its ports: the cookie no longer matches);
  // PermissionDenied without CAP_NET_ADMIN; Unimplemented or
  // InvalidArgument (EOPNOTSUPP) when the kernel lacks
  // CONFIG_INET_DIAG_DESTROY.
  absl::Status Destroy(const DiagSocket& socket);

 private:
  explicit SockDiag(UniqueFd fd) : fd_(std::move(fd)) {}
  absl::Status Send(const std::vector<uint8_t>& message);
  // One datagram (at most 1 s of waiting); DeadlineExceeded on a timeout.
  absl::StatusOr<size_t> Receive(std::vector<uint8_t>& buffer);

  UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_SOCK_DIAG_H_
