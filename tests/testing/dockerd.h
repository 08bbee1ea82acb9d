// A real dockerd (Debian's docker.io) for the container tests: a
// DockerApiRuntime (tests/testing/docker_api_runtime.h) with its own data
// root, exec root (its managed containerd's too), pid file, containerd
// namespace, a config file, the docker CLI's config directory, no bridge
// and no iptables; its containers go below its parent cgroup
// (--cgroup-parent). Images are made with `docker import`.
#ifndef EGRESS_TESTS_TESTING_DOCKERD_H_
#define EGRESS_TESTS_TESTING_DOCKERD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/docker_api_runtime.h"

namespace egress::testing {

class Dockerd : public DockerApiRuntime {
 public:
  // NotFound when dockerd, docker or busybox is missing
  // (scripts/install_deps.sh installs docker.io and busybox-static);
  // DeadlineExceeded (with its log) when it does not answer in 30 s.
  static absl::StatusOr<std::unique_ptr<Dockerd>> Start();

  // Cli and CliOk under the names bench/ calls them by.
  absl::StatusOr<CommandResult> Docker(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const {
    return Cli(args, timeout);
  }
  absl::StatusOr<std::string> DockerOk(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const {
    return CliOk(args, timeout);
  }

 private:
  Dockerd() = default;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DOCKERD_H_
