#include "userspace/kernel/sock_diag.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

// A dump datagram holds up to about 32 KiB of replies (the kernel sizes its
// buffer by the reader's); 64 KiB leaves room.
constexpr size_t kDatagramBytes = 64 * 1024;

}  // namespace

absl::StatusOr<SockDiag> SockDiag::Open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return ErrnoStatus(errno, "socket(NETLINK_SOCK_DIAG)");
  timeval tv{1, 0};
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoStatus(errno, "setsockopt(SO_RCVTIMEO)", "sock_diag socket");
  }
  return SockDiag(std::move(fd));
}

absl::Status SockDiag::Send(const std::vector<uint8_t>& message) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n =
      sendto(fd_.get(), message.data(), message.size(), 0,
             reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  if (n < 0) return ErrnoStatus(errno, "sendto", "sock_diag socket");
  return absl::OkStatus();
}

absl::StatusOr<size_t> SockDiag::Receive(std::vector<uint8_t>& buffer) {
  buffer.resize(kDatagramBytes);
  for (int attempt = 0; attempt < 8; ++attempt) {
    ssize_t n = recv(fd_.get(), buffer.data(), buffer.size(), 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError(
          "sock_diag: no answer from the kernel within 1 s");
    }
    return ErrnoStatus(errno, "recv", "sock_diag socket");
  }
  return absl::DeadlineExceededError("sock_diag: recv interrupted 8 times");
}

absl::StatusOr<SocketDump> SockDiag::Dump(uint8_t family, uint8_t protocol,
                                          uint32_t states, size_t max_sockets,
                                          absl::Duration deadline) {
  const uint32_t seq = ++seq_;
  EGRESS_RETURN_IF_ERROR(Send(DumpRequest(family, protocol, states, seq)));
  const absl::Time end = absl::Now() + deadline;
  SocketDump out;
  std::vector<uint8_t> buffer;
  // Each datagram holds at least one reply, so a dump of max_sockets ends
  // within max_sockets + 1 datagrams; the clock bounds it too.
  for (size_t i = 0; i <= max_sockets + 1; ++i) {
    if (absl::Now() > end) {
      return absl::DeadlineExceededError(absl::StrCat(
          "sock_diag dump: not complete after ", absl::FormatDuration(deadline),
          " (", out.sockets.size(), " sockets read)"));
    }
    EGRESS_ASSIGN_OR_RETURN(size_t n, Receive(buffer));
    EGRESS_ASSIGN_OR_RETURN(
        DiagBatch batch,
        ParseDump(absl::MakeConstSpan(buffer.data(), n), protocol, seq));
    for (DiagSocket& s : batch.sockets) {
      if (out.sockets.size() == max_sockets) {
        out.truncated = true;
        return out;
      }
      out.sockets.push_back(s);
    }
    if (batch.done) return out;
  }
  out.truncated = true;
  return out;
}

absl::Status SockDiag::Destroy(const DiagSocket& socket) {
  const uint32_t seq = ++seq_;
  EGRESS_RETURN_IF_ERROR(Send(DestroyRequest(socket, seq)));
  std::vector<uint8_t> buffer;
  // Only our own request is in flight: its acknowledgement comes first.
  EGRESS_ASSIGN_OR_RETURN(size_t n, Receive(buffer));
  return ParseAck(absl::MakeConstSpan(buffer.data(), n), seq);
}

}  // namespace egress
