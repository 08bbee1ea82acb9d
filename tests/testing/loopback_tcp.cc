#include "tests/testing/loopback_tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdint>

#include "absl/status/status.h"

namespace egress::testing {

absl::StatusOr<UniqueFd> ConnectLoopbackTcp(int port,
                                            absl::Duration io_timeout) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return absl::ErrnoToStatus(errno, "socket");
  // SO_SNDTIMEO bounds a blocking connect() too.
  const timeval tv = absl::ToTimeval(io_timeout);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return absl::ErrnoToStatus(errno, "setsockopt");
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof(sin)) !=
      0) {
    return absl::ErrnoToStatus(errno, "connect to 127.0.0.1");
  }
  return fd;
}

}  // namespace egress::testing
