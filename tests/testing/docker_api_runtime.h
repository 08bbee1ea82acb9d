// A container runtime with Docker's Engine API that the tests start and
// drive through its CLI: dockerd (tests/testing/dockerd.h) and Podman's
// service (tests/testing/podman.h). Each has everything of its own below a
// directory /tmp/egress-<kind>-XXXXXX (data, API socket, log) and a parent
// cgroup /egress-test-<kind>-XXXXXX in every hierarchy, made before the first
// container so that egressd can watch it. No network of its own, no
// registry: the test image is made offline from a static busybox (Debian's
// busybox-static). The destructor removes every container, stops the
// service and what it started, unmounts what it left mounted under its
// directory, removes the parent cgroup in every hierarchy and the directory,
// also when the test failed. A subclass only says how the service starts and
// what its CLI is.
#ifndef EGRESS_TESTS_TESTING_DOCKER_API_RUNTIME_H_
#define EGRESS_TESTS_TESTING_DOCKER_API_RUNTIME_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/command.h"

namespace egress::testing {

class DockerApiRuntime {
 public:
  virtual ~DockerApiRuntime();
  DockerApiRuntime(const DockerApiRuntime&) = delete;
  DockerApiRuntime& operator=(const DockerApiRuntime&) = delete;

  // The API socket (what egressd --docker_socket / --podman_socket takes).
  const std::string& socket() const { return socket_; }
  // The cgroup (relative to each hierarchy's root) containers go below.
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  // What every `run` of a test container adds after `run` (e.g. Podman's
  // --cgroup-parent, which its service has no daemon-wide setting for).
  const std::vector<std::string>& run_flags() const { return run_flags_; }

  // `docker -H unix://<socket> args...` or `podman --url unix://<socket>
  // args...`; a non-zero exit is not an error.
  absl::StatusOr<CommandResult> Cli(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;
  // Same, but a non-zero exit is an error; returns the output trimmed.
  absl::StatusOr<std::string> CliOk(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(30)) const;

  // Imports an image `name` whose root file system holds a static busybox
  // (/bin/sh, /bin/nc, /bin/sleep, ...). Once per name.
  absl::Status ImportBusybox(const std::string& name);

  // Removes every container (`rm -f`, without a grace period).
  absl::Status RemoveAllContainers() const;

  // The end of the service's log.
  std::string Log() const;

 protected:
  DockerApiRuntime() = default;

  // NotFound naming `package` unless every binary in `binaries` (and
  // busybox) is there to run.
  static absl::Status CheckInstalled(const std::vector<std::string>& binaries,
                                     const std::string& package);
  // Makes the directory /tmp/egress-<kind>-XXXXXX (dir_), names the socket
  // <dir>/<kind>.sock, the log <dir>/<kind>.log and makes the parent cgroup
  // /egress-test-<kind>-XXXXXX in every hierarchy. Returns the XXXXXX tag.
  absl::StatusOr<std::string> MakeHome(const std::string& kind);
  // Starts the service (in its own process group, its log at log_) and
  // waits up to 30 s until its CLI answers `version`.
  absl::Status Serve(DaemonSpec spec);

  // Set by the subclass before Serve().
  std::string name_;                  // "dockerd": for messages
  std::string cli_name_;              // "docker": for messages
  std::vector<std::string> cli_;      // the CLI's argv before `args`
  std::vector<std::string> rm_args_;  // forced removal: {"rm", "-f", ...}
  std::vector<std::string> run_flags_;
  std::string dir_, socket_, cgroup_parent_, log_;

 private:
  void Stop();

  pid_t pid_ = -1;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DOCKER_API_RUNTIME_H_
