// A real Podman service (Debian's podman) for the container tests, started
// by the test with everything of its own: storage root (vfs), run root, tmp
// dir, containers.conf and storage.conf, event log (file backend: no
// journald), API socket and a parent cgroup (cgroupfs manager: no systemd).
// No network of its own (containers use the host's), no registry: the image
// is made offline with `podman import` of a root file system holding a
// static busybox (Debian's busybox-static). The destructor removes every
// container, stops the service, unmounts what it left mounted under its
// directory, removes the parent cgroup in every hierarchy and the directory,
// also when the test failed.
#ifndef EGRESS_TESTS_TESTING_PODMAN_H_
#define EGRESS_TESTS_TESTING_PODMAN_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"

namespace egress::testing {

class Podman {
 public:
  // NotFound when podman or busybox is missing (scripts/install_deps.sh
  // installs podman and busybox-static); DeadlineExceeded (with its log)
  // when the service does not answer in 30 s.
  static absl::StatusOr<std::unique_ptr<Podman>> Start();
  ~Podman();
  Podman(const Podman&) = delete;
  Podman& operator=(const Podman&) = delete;

  // The Docker-compatible API socket (what egressd --podman_socket takes).
  const std::string& socket() const { return socket_; }
  // The cgroup (relative to each hierarchy's root) containers go below
  // (`podman run --cgroup-parent`).
  const std::string& cgroup_parent() const { return cgroup_parent_; }

  // `podman --url unix://<socket> args...`; a non-zero exit is not an error.
  absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;
  // Same, but a non-zero exit is an error; returns the output trimmed.
  absl::StatusOr<std::string> RunOk(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;

  // Imports an image `name` whose root file system holds a static busybox
  // (/bin/sh, /bin/nc, /bin/sleep, ...).
  absl::Status ImportBusybox(const std::string& name);

  // Removes every container (podman rm -f -t 0).
  absl::Status RemoveAllContainers() const;

  std::string Log() const;

 private:
  Podman() = default;
  void Stop();

  std::string dir_, socket_, cgroup_parent_, log_;
  pid_t pid_ = -1;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_PODMAN_H_
