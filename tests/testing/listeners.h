// In-process servers for probes to talk to. Each runs one background thread
// (poll loop, bounded waits) and stops in its destructor. They live in the
// test process, outside the test cgroup, so enforcement on the cgroup does
// not affect them (the reply path of UdpEchoServer included).
#ifndef EGRESS_TESTS_TESTING_LISTENERS_H_
#define EGRESS_TESTS_TESTING_LISTENERS_H_

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

// TCP server on addr:port (port 0 = ephemeral). Accepts any number of
// connections (64 at a time) and echoes or discards what they send.
class TcpListener {
 public:
  enum class Mode { kEcho, kDiscard };

  static absl::StatusOr<std::unique_ptr<TcpListener>> Create(
      const std::string& addr = "127.0.0.1", uint16_t port = 0,
      Mode mode = Mode::kEcho);
  // Takes a bound (not yet listening) stream socket, e.g. one created in a
  // TestNetns.
  static absl::StatusOr<std::unique_ptr<TcpListener>> FromBoundSocket(
      UniqueFd fd, Mode mode = Mode::kEcho);

  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener();

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int64_t bytes_received() const { return bytes_.load(); }
  // Polls until accepted() >= n or the timeout passes; returns the outcome.
  bool WaitForAccepted(int n, absl::Duration timeout = absl::Seconds(2)) const;

 private:
  TcpListener(UniqueFd fd, UniqueFd stop, uint16_t port, Mode mode);
  void Loop();

  UniqueFd fd_;
  UniqueFd stop_;  // eventfd written by the destructor.
  uint16_t port_;
  Mode mode_;
  std::atomic<int> accepted_{0};
  std::atomic<int64_t> bytes_{0};
  std::thread thread_;
};

// A UDP socket bound to addr:port (both in host order) whose receive buffer
// holds 8 MiB (SO_RCVBUFFORCE: root), for a server that many peers send to
// before it reads; -errno when it cannot be made or bound. For a test's
// server in the test cgroup (the socket is the calling process's and is
// closed with it).
int BoundUdpServer(uint32_t addr, uint16_t port);

// UDP server on addr:port that sends every datagram back to its sender from
// the same socket and counts datagrams.
class UdpEchoServer {
 public:
  static absl::StatusOr<std::unique_ptr<UdpEchoServer>> Create(
      const std::string& addr = "127.0.0.1", uint16_t port = 0);
  static absl::StatusOr<std::unique_ptr<UdpEchoServer>> FromBoundSocket(
      UniqueFd fd);

  UdpEchoServer(const UdpEchoServer&) = delete;
  UdpEchoServer& operator=(const UdpEchoServer&) = delete;
  ~UdpEchoServer();

  uint16_t port() const { return port_; }
  int datagrams() const { return datagrams_.load(); }
  bool WaitForDatagrams(int n, absl::Duration timeout = absl::Seconds(2)) const;

 private:
  UdpEchoServer(UniqueFd fd, UniqueFd stop, uint16_t port);
  void Loop();

  UniqueFd fd_;
  UniqueFd stop_;
  uint16_t port_;
  std::atomic<int> datagrams_{0};
  std::thread thread_;
};

// A port that is guaranteed closed for TCP on every local address while this
// object lives: a socket bound to [::]:port (dual stack) that never listens,
// so connects get RST -> ECONNREFUSED and nobody else can take the port.
class ReservedPort {
 public:
  static absl::StatusOr<std::unique_ptr<ReservedPort>> Create(
      int type = SOCK_STREAM);
  uint16_t port() const { return port_; }

 private:
  ReservedPort(UniqueFd fd, uint16_t port) : fd_(std::move(fd)), port_(port) {}
  UniqueFd fd_;
  uint16_t port_;
};

// Probe: unconnected UDP socket sends one datagram to server addr:port and
// waits up to 2 s for a reply from that address. 0 when it arrived, ETIMEDOUT
// when not, else the errno of the failing syscall.
int UdpClientExpectReply(const std::string& server_addr, uint16_t port);

// Binds a new socket of `type` (SOCK_STREAM/SOCK_DGRAM) to addr:port.
absl::StatusOr<UniqueFd> BindSocket(int type, const std::string& addr,
                                    uint16_t port);
// The local port of a bound socket.
absl::StatusOr<uint16_t> LocalPort(int fd);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_LISTENERS_H_
