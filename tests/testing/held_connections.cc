#include "tests/testing/held_connections.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

// A socket of `type` bound to `address` port 0; its port in *port.
absl::StatusOr<UniqueFd> Bound(const std::string& address, int type,
                               uint16_t* port) {
  absl::StatusOr<SockAddr> addr = ParseSockAddr(address, 0);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(socket(addr->family(), type | SOCK_CLOEXEC, 0));
  if (!fd) return Errno("socket");
  if (bind(fd.get(), addr->get(), addr->len) != 0) {
    return Errno(absl::StrCat("bind ", address));
  }
  sockaddr_storage got{};
  socklen_t len = sizeof(got);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&got), &len);
  *port = ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  return fd;
}

bool Readable(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
}

// The child: connect everything, report, then echo until 30 s have passed.
[[noreturn]] void Hold(const std::string& cgroup_dir,
                       const std::vector<SockAddr>& tcp,
                       const std::vector<SockAddr>& udp, int ready,
                       std::optional<uint32_t> uid) {
  FILE* f = fopen((cgroup_dir + "/cgroup.procs").c_str(), "w");
  if (f == nullptr || fprintf(f, "%d", getpid()) < 0 || fclose(f) != 0) {
    _exit(2);
  }
  if (uid.has_value() &&
      (setgroups(0, nullptr) != 0 || setresgid(*uid, *uid, *uid) != 0 ||
       setresuid(*uid, *uid, *uid) != 0)) {
    _exit(6);
  }
  std::vector<pollfd> held;
  for (const SockAddr& a : tcp) {
    int fd = socket(a.family(), SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, a.get(), a.len) != 0) _exit(3);
    held.push_back({fd, POLLIN, 0});
  }
  for (const SockAddr& a : udp) {
    int fd = socket(a.family(), SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, a.get(), a.len) != 0) _exit(4);
  }
  if (write(ready, "r", 1) != 1) _exit(5);
  for (int round = 0; round < 300; ++round) {
    if (poll(held.data(), held.size(), 100) <= 0) continue;
    for (pollfd& p : held) {
      if (p.fd < 0 || p.revents == 0) continue;
      char buf[256];
      ssize_t n = read(p.fd, buf, sizeof(buf));
      if (n <= 0 || write(p.fd, buf, static_cast<size_t>(n)) != n) {
        close(p.fd);
        p.fd = -1;
      }
    }
  }
  _exit(0);
}

}  // namespace

absl::StatusOr<LoopbackServer> ListenTcp(const std::string& address) {
  LoopbackServer s;
  s.address = address;
  absl::StatusOr<UniqueFd> fd = Bound(address, SOCK_STREAM, &s.port);
  if (!fd.ok()) return fd.status();
  if (listen(fd->get(), 8) != 0) return Errno("listen");
  s.listener = std::move(*fd);
  return s;
}

absl::StatusOr<UdpPeer> BindUdp(const std::string& address) {
  UdpPeer p;
  p.address = address;
  absl::StatusOr<UniqueFd> fd = Bound(address, SOCK_DGRAM, &p.port);
  if (!fd.ok()) return fd.status();
  p.fd = std::move(*fd);
  return p;
}

absl::StatusOr<std::unique_ptr<HeldConnections>> HeldConnections::Start(
    const std::string& cgroup_dir, std::vector<LoopbackServer*> servers,
    const std::vector<const UdpPeer*>& udp, std::optional<uint32_t> uid) {
  std::vector<SockAddr> tcp_addrs, udp_addrs;
  for (const LoopbackServer* s : servers) {
    tcp_addrs.push_back(*ParseSockAddr(s->address, s->port));
  }
  for (const UdpPeer* p : udp) {
    udp_addrs.push_back(*ParseSockAddr(p->address, p->port));
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return Errno("pipe");
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    close(ready[0]);
    Hold(cgroup_dir, tcp_addrs, udp_addrs, ready[1], uid);
  }
  close(ready[1]);
  auto held = std::unique_ptr<HeldConnections>(new HeldConnections(pid));
  UniqueFd ready_fd(ready[0]);
  char c = 0;
  if (!Readable(ready_fd.get(), absl::Seconds(5)) ||
      read(ready_fd.get(), &c, 1) != 1) {
    return absl::DeadlineExceededError(
        "the child did not join its cgroup and connect within 5 s");
  }
  for (LoopbackServer* s : servers) {
    if (!Readable(s->listener.get(), absl::Seconds(2))) {
      return absl::DeadlineExceededError("no connection to accept in 2 s");
    }
    s->accepted =
        UniqueFd(accept4(s->listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!s->accepted) return Errno("accept");
  }
  return held;
}

HeldConnections::~HeldConnections() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

std::string PeerSees(int fd, absl::Duration timeout) {
  if (!Readable(fd, timeout)) return "open";
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n > 0) return "data";
  if (n == 0) return "eof";
  if (errno == ECONNRESET) return "reset";
  return absl::StrCat("error: ", strerror(errno));
}

std::string EchoThrough(int fd, const std::string& text,
                        absl::Duration timeout) {
  if (send(fd, text.data(), text.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(text.size())) {
    return "";
  }
  if (!Readable(fd, timeout)) return "";
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace egress::testing
