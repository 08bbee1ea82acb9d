// A real containerd for the pod-target tests (Debian's containerd and runc),
// started by the test with a config, root, state and socket of its own under
// a temporary directory: no CRI plugin (no networking: every container runs
// with the host network), no registry (images are imported offline from a
// rootfs the test makes). It dies with the test process (PR_SET_PDEATHSIG);
// the destructor deletes every container it ran, stops containerd, and
// removes its mounts, cgroups and directory, also when the test fails.
#ifndef EGRESS_TESTS_TESTING_CONTAINERD_H_
#define EGRESS_TESTS_TESTING_CONTAINERD_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace egress::testing {

class Containerd {
 public:
  // NotFound when containerd or ctr is missing (scripts/install_deps.sh
  // installs them); DeadlineExceeded when it does not answer within 20 s.
  static absl::StatusOr<std::unique_ptr<Containerd>> Start();
  ~Containerd();
  Containerd(const Containerd&) = delete;
  Containerd& operator=(const Containerd&) = delete;

  // Its API socket.
  const std::string& socket() const { return socket_; }

  // `ctr --address SOCKET -n NS ARGS...`; its output, or Internal with it.
  absl::StatusOr<std::string> Ctr(const std::string& ns,
                                  const std::vector<std::string>& args);

  // Makes an OCI image of one static busybox (Debian busybox-static) and
  // imports it into `ns` as `ref`.
  absl::Status ImportBusyboxImage(const std::string& ns,
                                  const std::string& ref);

  // `ctr run -d --net-host` of `image` as container `id` with `labels`,
  // running `command`, in cgroup `cgroup` ("" = containerd's default,
  // /NS/ID; a path such as /kubepods/burstable/pod<uid>/<id> lays it out as
  // the kubelet does; the caller removes that tree). Returns the pid of its
  // first process.
  absl::StatusOr<pid_t> Run(const std::string& ns, const std::string& id,
                            const std::string& image,
                            const std::map<std::string, std::string>& labels,
                            const std::vector<std::string>& command,
                            const std::string& cgroup = "");
  // Kills the container's task and deletes both.
  absl::Status Remove(const std::string& ns, const std::string& id);

 private:
  Containerd() = default;
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  std::set<std::pair<std::string, std::string>> running_;  // (ns, id)
  std::set<std::string> namespaces_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_CONTAINERD_H_
