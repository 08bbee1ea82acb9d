// egressd: the wiring of its parts. The engine (targets and rules, through
// the kernel port), the control service (typed requests), the record hub
// (ring buffer -> pipeline -> sinks, followers, learning), the event loop and
// its worker thread, and the metrics server. Each part is its own unit; this
// one only builds and connects them.
#ifndef EGRESS_USERSPACE_DAEMON_DAEMON_H_
#define EGRESS_USERSPACE_DAEMON_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/events/event_sink.h"

namespace egress {

struct DaemonOptions {
  std::string bpffs_dir = "/sys/fs/bpf/egress";  // pins live below
  std::string bpffs_mount = "/sys/fs/bpf";       // mounted if missing
  // Literal-cgroup targets share one program set (BpfKernel::Open).
  bool shared_program_set = true;
  std::string state_dir = "/var/lib/egress";
  std::string socket_path = "/run/egress/egressd.sock";
  // Where cgroup v2 is mounted; empty = found in /proc/self/mountinfo.
  std::string cgroup_root;
  // Where every drained record goes (stdout, file, syslog); may be null.
  std::shared_ptr<EventSink> event_sink;
  // Prometheus /metrics and /healthz ("127.0.0.1:9477"; "" = off; port 0
  // picks a free port, reported by `status`).
  std::string metrics_addr;
  // Policy files (*.yaml, *.yml) applied at start, on SIGHUP, on a change
  // and on `egressctl reload`; "" = none. A rejected directory changes
  // nothing: what is enforced stays.
  std::string policy_dir;
  // Seconds an address learned from a DNS answer stays bound at least,
  // whatever its TTL (1..65535; docs/dns.md).
  uint32_t dns_ttl_floor = 30;
  // How often the reconciler walks the targets' cgroups when no inotify
  // event woke it (daemon/reconciler.h).
  absl::Duration rescan_interval = absl::Milliseconds(500);
  // How often every enforcing target is probed from inside its cgroup
  // (daemon/self_check.h); zero = never.
  absl::Duration self_check_interval = absl::Seconds(60);
  // The node named in records and suggest/export headers; "" = the host
  // name (egressd_main resolves --node_name, NODE_NAME, gethostname()).
  std::string node_name;
  // The Docker Engine API socket, followed for container targets; "" = no
  // container runtime.
  std::string docker_socket = "/run/docker.sock";
  // Podman's Docker-compatible API socket, followed the same way ("" = not
  // followed; rootful Podman's is /run/podman/podman.sock).
  std::string podman_socket;
  // Pods: containerd's socket and namespace ("" socket = not followed).
  std::string containerd_socket = "/run/containerd/containerd.sock";
  std::string containerd_namespace = "k8s.io";
  // The parent cgroup of the containers, watched so that a container is
  // enforced from its first instruction ("" = the running containers'
  // parent, unless a systemd slice); what an unclassified one gets.
  std::string container_parent;
  bool unclassified_audit = false;
};

class Daemon {
 public:
  // Listens on the control socket first (a second egressd stops there),
  // locks the state and pin directories (FailedPrecondition naming the
  // egressd that holds one), mounts bpffs if needed, opens or creates the
  // pinned maps, loads the state and brings the kernel in line with it, applies
  // the policy directory. DataLoss for a corrupt state file; errno statuses for
  // kernel refusals. Flags it can check alone (--rescan_interval_ms,
  // --cgroup_root) are checked before anything is made. A start that fails
  // after it locked the pins removes the pin directory it made in this run
  // (--bpffs or its v<ABI>) and keeps one that was there before: those pins
  // are the enforced state.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(DaemonOptions options);
  ~Daemon();

  // Serves until *stop becomes true or SIGTERM/SIGINT arrives. Enforcement
  // stays in force after it returns.
  absl::Status Run(const std::atomic<bool>* stop);

  // The parts and their order of construction (daemon.cc).
  struct Parts;

 private:
  explicit Daemon(std::unique_ptr<Parts> parts);
  // Everything after the kernel is open: the engine, then the services.
  static absl::Status StartParts(Parts& p);
  // Stops and frees `p` and removes `made_now` (when not ""); returns `why`.
  static absl::Status FailedStart(std::unique_ptr<Parts> p,
                                  const std::string& made_now,
                                  absl::Status why);
  std::unique_ptr<Parts> parts_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_DAEMON_H_
