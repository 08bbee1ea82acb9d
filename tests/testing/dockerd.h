// A real dockerd (Debian's docker.io) for the container tests, started by
// the test with everything of its own: data root, exec root (its managed
// containerd's too), pid file, API socket, containerd namespace, a config
// file, the docker CLI's config directory and a parent cgroup. No bridge, no
// iptables, no registry: images are made offline with `docker import` of a
// root file system the fixture builds from a static busybox (Debian's
// busybox-static). The destructor removes every container and image, stops
// dockerd (and its containerd), unmounts what it left mounted under its
// directory, removes the parent cgroup in every hierarchy and the directory,
// also when the test failed.
#ifndef EGRESS_TESTS_TESTING_DOCKERD_H_
#define EGRESS_TESTS_TESTING_DOCKERD_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"

namespace egress::testing {

class Dockerd {
 public:
  // NotFound when dockerd, docker or busybox is missing
  // (scripts/install_deps.sh installs docker.io and busybox-static);
  // DeadlineExceeded (with its log) when it does not answer in 30 s.
  static absl::StatusOr<std::unique_ptr<Dockerd>> Start();
  ~Dockerd();
  Dockerd(const Dockerd&) = delete;
  Dockerd& operator=(const Dockerd&) = delete;

  // The API socket (what egressd --docker_socket takes).
  const std::string& socket() const { return socket_; }
  // The cgroup (relative to each hierarchy's root) containers go below.
  const std::string& cgroup_parent() const { return cgroup_parent_; }

  // `docker -H unix://<socket> args...`; a non-zero exit is not an error.
  absl::StatusOr<CommandResult> Docker(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;
  // Same, but a non-zero exit is an error; returns the output trimmed.
  absl::StatusOr<std::string> DockerOk(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;

  // Imports an image `name` whose root file system holds a static busybox
  // (/bin/sh, /bin/nc, /bin/sleep, ...). Once per name.
  absl::Status ImportBusybox(const std::string& name);

  // Removes every container (docker rm -f).
  absl::Status RemoveAllContainers() const;

  std::string Log() const;

 private:
  Dockerd() = default;
  void Stop();

  std::string dir_, socket_, cgroup_parent_, log_;
  pid_t pid_ = -1;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DOCKERD_H_
