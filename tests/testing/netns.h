// A throwaway network namespace joined to the root namespace by a veth pair,
// so tests have non-loopback destinations that never leave the machine.
//
// Addresses: a random /30 from the benchmarking range 198.18.0.0/15
// (RFC 2544) and a matching /64 from the ULA prefix fd65:6774::/32 ("eg").
// The root side gets .1 / ::1, the namespace side .2 / ::2. DAD is disabled
// so the IPv6 addresses are usable at once.
#ifndef EGRESS_TESTS_TESTING_NETNS_H_
#define EGRESS_TESTS_TESTING_NETNS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

class TestNetns {
 public:
  // `ip netns add egt-<name_prefix>-<random>`, veth pair egh<random> (root
  // side) / egn<random> (namespace side), addresses, links up (lo too).
  static absl::StatusOr<std::unique_ptr<TestNetns>> Create(
      absl::string_view name_prefix);

  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  ~TestNetns();  // Best-effort Remove(); failures go to stderr.

  // Kills processes in the namespace, deletes the veth pair and the
  // namespace. Idempotent.
  absl::Status Remove();

  const std::string& name() const { return name_; }
  const std::string& host_ifname() const { return host_if_; }
  const std::string& ns_ifname() const { return ns_if_; }
  const std::string& host_addr4() const { return host_addr4_; }
  const std::string& ns_addr4() const { return ns_addr4_; }
  const std::string& host_addr6() const { return host_addr6_; }
  const std::string& ns_addr6() const { return ns_addr6_; }

  // `ip netns exec <name> sh -c <shell_cmd>`, bounded by `timeout`.
  absl::StatusOr<CommandResult> RunInNetns(
      const std::string& shell_cmd,
      absl::Duration timeout = absl::Seconds(10)) const;
  // `ip netns exec <name> argv...` without a shell.
  absl::StatusOr<CommandResult> RunArgvInNetns(
      const std::vector<std::string>& argv,
      absl::Duration timeout = absl::Seconds(10)) const;

  // A socket created inside the namespace (by a helper thread that joins it)
  // and bound to addr:port there, e.g. for TcpListener::FromBoundSocket.
  absl::StatusOr<UniqueFd> BindSocketInNetns(int type, const std::string& addr,
                                             uint16_t port) const;

 private:
  TestNetns() = default;
  absl::Status Setup(uint32_t block);

  std::string name_;
  std::string host_if_;
  std::string ns_if_;
  std::string host_addr4_;
  std::string ns_addr4_;
  std::string host_addr6_;
  std::string ns_addr6_;
  bool removed_ = false;
};

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_NETNS_H_
