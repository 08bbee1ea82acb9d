#include "tests/testing/unix_sockets.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress {
namespace testing {
namespace {

// errno of a failed call (or 0), after closing `fd`.
int Outcome(int rc, int fd) {
  int err = rc == 0 ? 0 : errno;
  close(fd);
  return err;
}

}  // namespace

UnixAddr MakeUnixAddr(const std::string& text, bool with_nul) {
  UnixAddr a;
  a.sun.sun_family = AF_UNIX;
  const size_t n = std::min(text.size(), sizeof(a.sun.sun_path));
  memcpy(a.sun.sun_path, text.data(), n);
  const bool abstract = !text.empty() && text[0] == '@';
  if (abstract) a.sun.sun_path[0] = '\0';
  const size_t nul = !abstract && with_nul && n < sizeof(a.sun.sun_path);
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + nul);
  return a;
}

absl::StatusOr<std::unique_ptr<UnixServer>> UnixServer::Create(
    int type, const std::string& text) {
  UniqueFd fd(socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  UnixAddr a = MakeUnixAddr(text);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a.sun), a.len) != 0) {
    return ErrnoStatus(errno, "bind", text);
  }
  if (type != SOCK_DGRAM && listen(fd.get(), 64) != 0) {
    return ErrnoStatus(errno, "listen", text);
  }
  std::string path = text[0] == '/' ? text : "";
  return std::unique_ptr<UnixServer>(new UnixServer(std::move(fd), path));
}

UnixServer::~UnixServer() {
  fd_.reset();
  if (!path_.empty()) unlink(path_.c_str());
}

int UnixServer::DrainDatagrams() {
  char buf[256];
  int n = 0;
  // Bounded: the socket is non-blocking and holds at most its queue.
  while (n < 4096 && recv(fd_.get(), buf, sizeof(buf), 0) >= 0) ++n;
  return n;
}

absl::StatusOr<std::unique_ptr<TempSocketDir>> TempSocketDir::Create() {
  char tmpl[] = "/tmp/egress-unix-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return ErrnoStatus(errno, "mkdtemp", tmpl);
  return std::unique_ptr<TempSocketDir>(new TempSocketDir(tmpl));
}

TempSocketDir::~TempSocketDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int UnixConnect(int type, const std::string& text, bool with_nul) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  UnixAddr a = MakeUnixAddr(text, with_nul);
  return Outcome(connect(fd, reinterpret_cast<sockaddr*>(&a.sun), a.len), fd);
}

int UnixSendto(const std::string& text, bool with_nul) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  UnixAddr a = MakeUnixAddr(text, with_nul);
  ssize_t n = sendto(fd, "x", 1, MSG_DONTWAIT,
                     reinterpret_cast<sockaddr*>(&a.sun), a.len);
  return Outcome(n == 1 ? 0 : -1, fd);
}

int UnixSendmsg(const std::string& text) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  UnixAddr a = MakeUnixAddr(text);
  char byte = 'x';
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_name = &a.sun;
  msg.msg_namelen = a.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT);
  return Outcome(n == 1 ? 0 : -1, fd);
}

}  // namespace testing
}  // namespace egress
