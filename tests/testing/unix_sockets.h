// Unix sockets for the unix-rule tests: servers bound to a path or an
// abstract name, and probes that connect or send to one the way programs
// do. Addresses use the text form of the rules: "/dir/x.sock" or "@name".
#ifndef EGRESS_TESTS_TESTING_UNIX_SOCKETS_H_
#define EGRESS_TESTS_TESTING_UNIX_SOCKETS_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

// A sockaddr_un for a text address and its length. A path's length counts
// its NUL when `with_nul` (as most programs pass it; Go and others do not);
// an abstract name's never does.
struct UnixAddr {
  sockaddr_un sun{};
  socklen_t len = 0;
};
UnixAddr MakeUnixAddr(const std::string& text, bool with_nul = true);

// A bound unix socket of `type` (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET);
// stream and seqpacket ones listen (backlog 64, so connects complete without
// an accept). The destructor closes it and removes a path's socket file.
class UnixServer {
 public:
  static absl::StatusOr<std::unique_ptr<UnixServer>> Create(
      int type, const std::string& text);
  UnixServer(const UnixServer&) = delete;
  UnixServer& operator=(const UnixServer&) = delete;
  ~UnixServer();

  // Datagrams waiting to be read (dgram servers), read and dropped.
  int DrainDatagrams();

 private:
  UnixServer(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(path) {}
  UniqueFd fd_;
  std::string path_;  // "" for an abstract name
};

// A temporary directory (mkdtemp under /tmp) removed with what is in it,
// for socket files.
class TempSocketDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempSocketDir>> Create();
  ~TempSocketDir();
  const std::string& path() const { return path_; }

 private:
  explicit TempSocketDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Probes: 0 on success, else the errno (EPERM when refused by a hook).
// connect() of a new socket of `type`.
int UnixConnect(int type, const std::string& text, bool with_nul = true);
// sendto() of one datagram from a new, unbound SOCK_DGRAM socket.
int UnixSendto(const std::string& text, bool with_nul = true);
// sendmsg() with msg_name, from a new SOCK_DGRAM socket.
int UnixSendmsg(const std::string& text);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_UNIX_SOCKETS_H_
