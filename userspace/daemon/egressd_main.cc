// egressd: loads, attaches and pins egress's BPF programs, owns the maps and
// serves egressctl. Enforcement outlives the process: stopping or killing
// egressd leaves every target enforced; `egressctl target remove` lifts it.
#include <gflags/gflags.h>
#include <stdio.h>

#include <atomic>

#include "userspace/daemon/daemon.h"

DEFINE_string(socket, "/run/egress/egressd.sock", "control socket path");
DEFINE_string(bpffs, "/sys/fs/bpf/egress", "bpffs directory for pins");
DEFINE_string(bpffs_mount, "/sys/fs/bpf",
              "where bpffs is mounted (mounted there if missing)");
DEFINE_string(state_dir, "/var/lib/egress", "directory of the state file");
DEFINE_string(cgroup_root, "",
              "cgroup v2 mount to use (default: found in /proc/self/mountinfo; "
              "in a container, e.g. /host/sys/fs/cgroup)");
DEFINE_string(metrics_addr, "127.0.0.1:9477",
              "Prometheus /metrics and /healthz address (\"\" = off)");
DEFINE_bool(events, true, "write verdict records as JSON lines to stdout");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "egressd [--socket PATH] [--bpffs DIR] [--state_dir DIR] [--cgroup_root "
      "DIR]\n"
      "Enforces per-cgroup egress allow-lists; see egressctl.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  egress::DaemonOptions opts;
  opts.socket_path = FLAGS_socket;
  opts.bpffs_dir = FLAGS_bpffs;
  opts.bpffs_mount = FLAGS_bpffs_mount;
  opts.state_dir = FLAGS_state_dir;
  opts.cgroup_root = FLAGS_cgroup_root;
  opts.metrics_addr = FLAGS_metrics_addr;
  if (FLAGS_events) {
    opts.event_sink = [](const std::string& line) {
      fputs(line.c_str(), stdout);
      fputc('\n', stdout);
    };
  }
  auto daemon = egress::Daemon::Create(opts);
  if (!daemon.ok()) {
    fprintf(stderr, "egressd: %s\n", daemon.status().ToString().c_str());
    return 1;
  }
  absl::Status st = (*daemon)->Run(nullptr);
  if (!st.ok()) {
    fprintf(stderr, "egressd: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
