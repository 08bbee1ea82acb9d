// A real Podman service (Debian's podman) for the container tests: a
// DockerApiRuntime (tests/testing/docker_api_runtime.h) with its own storage
// root (vfs), run root, tmp dir, containers.conf and storage.conf, event log
// (file backend: no journald) and cgroupfs manager (no systemd); its
// containers share the host's network and go below its parent cgroup
// (`podman run --cgroup-parent`, in run_flags()). Images are made with
// `podman import`; the CLI is the remote client, so everything goes through
// the service (and its events).
#ifndef EGRESS_TESTS_TESTING_PODMAN_H_
#define EGRESS_TESTS_TESTING_PODMAN_H_

#include <memory>

#include "absl/status/statusor.h"
#include "tests/testing/docker_api_runtime.h"

namespace egress::testing {

class Podman : public DockerApiRuntime {
 public:
  // NotFound when podman or busybox is missing (scripts/install_deps.sh
  // installs podman and busybox-static); DeadlineExceeded (with its log)
  // when the service does not answer in 30 s.
  static absl::StatusOr<std::unique_ptr<Podman>> Start();

 private:
  Podman() = default;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_PODMAN_H_
