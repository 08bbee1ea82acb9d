// Connections that exist before a policy does: loopback servers in the test
// process and a child process, in a cgroup, that connects to them and holds
// the connections (echoing what its peers send) until it is killed or 30 s
// pass. The servers' ends tell what the peer of a cut connection sees.
#ifndef EGRESS_TESTS_TESTING_HELD_CONNECTIONS_H_
#define EGRESS_TESTS_TESTING_HELD_CONNECTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {

// A listening TCP socket on `address` (127.0.0.1, ::1), port chosen by the
// kernel.
struct LoopbackServer {
  std::string address;
  uint16_t port = 0;
  UniqueFd listener;
  UniqueFd accepted;  // set by HeldConnections::Start
};
absl::StatusOr<LoopbackServer> ListenTcp(const std::string& address);

// A bound UDP socket: something for a connected UDP socket to point at.
struct UdpPeer {
  std::string address;
  uint16_t port = 0;
  UniqueFd fd;
};
absl::StatusOr<UdpPeer> BindUdp(const std::string& address);

class HeldConnections {
 public:
  // Starts the child in `cgroup_dir` (absolute), which connects to each
  // server (TCP) and to each UDP peer (connect() only), and accepts each
  // server's connection. With `uid`, the child becomes that user (real,
  // effective and saved uid and gid) once in its cgroup. Fails when the
  // child cannot join or connect within 5 s.
  static absl::StatusOr<std::unique_ptr<HeldConnections>> Start(
      const std::string& cgroup_dir, std::vector<LoopbackServer*> servers,
      const std::vector<const UdpPeer*>& udp,
      std::optional<uint32_t> uid = std::nullopt);
  // Kills and reaps the child.
  ~HeldConnections();
  HeldConnections(const HeldConnections&) = delete;
  HeldConnections& operator=(const HeldConnections&) = delete;

  pid_t pid() const { return pid_; }

 private:
  explicit HeldConnections(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// What the server end of a connection sees within `timeout`: "reset"
// (ECONNRESET), "eof" (the peer closed), "data" (bytes arrived), "open"
// (nothing happened) or "error: ..." for anything else.
std::string PeerSees(int fd, absl::Duration timeout);

// Sends `text` on `fd` and returns what comes back within `timeout` (the
// child echoes): "" when nothing does.
std::string EchoThrough(int fd, const std::string& text,
                        absl::Duration timeout);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_HELD_CONNECTIONS_H_
