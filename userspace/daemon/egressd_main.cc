// egressd: loads, attaches and pins egress's BPF programs, owns the maps and
// serves egressctl. Enforcement outlives the process: stopping or killing
// egressd leaves every target enforced; `egressctl target remove` lifts it.
#include <gflags/gflags.h>
#include <signal.h>
#include <stdio.h>

#include <atomic>
#include <memory>
#include <vector>

#include "userspace/daemon/daemon.h"
#include "userspace/events/event_sink.h"

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
DEFINE_string(policy_dir, "",
              "policy files (*.yaml) applied at start and on SIGHUP (\"\" = "
              "none); a rejected directory leaves enforcement unchanged");
DEFINE_bool(events, true, "write verdict records as JSON lines to stdout");
DEFINE_string(events_file, "",
              "also append records as JSON lines to this file (\"\" = off); "
              "its directory is created if missing");
DEFINE_uint64(events_file_max_bytes, 104857600,
              "rotate --events_file before it would exceed this size");
DEFINE_int32(events_file_keep, 5,
             "rotated files kept: PATH.1 (newest) .. PATH.N (0..1000)");
DEFINE_bool(events_syslog, false,
            "also send each record's message to syslog (the journal under "
            "systemd) as \"EGRESS <VERDICT> ...\", LOG_DAEMON, LOG_WARNING");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "egressd [--socket PATH] [--bpffs DIR] [--state_dir DIR] [--cgroup_root "
      "DIR] [--policy_dir DIR]\n"
      "        [--events=true|false] [--events_file PATH "
      "[--events_file_max_bytes N] [--events_file_keep N]] [--events_syslog]\n"
      "Enforces per-cgroup egress allow-lists; see egressctl.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // A closed stdout pipe must cost records (counted by the sink), not the
  // daemon.
  signal(SIGPIPE, SIG_IGN);
  egress::DaemonOptions opts;
  opts.socket_path = FLAGS_socket;
  opts.bpffs_dir = FLAGS_bpffs;
  opts.bpffs_mount = FLAGS_bpffs_mount;
  opts.state_dir = FLAGS_state_dir;
  opts.cgroup_root = FLAGS_cgroup_root;
  opts.metrics_addr = FLAGS_metrics_addr;
  opts.policy_dir = FLAGS_policy_dir;
  std::vector<std::unique_ptr<egress::EventSink>> sinks;
  if (FLAGS_events) sinks.push_back(egress::StdoutSink());
  if (!FLAGS_events_file.empty()) {
    auto file = egress::RotatingFileSink(
        FLAGS_events_file, FLAGS_events_file_max_bytes, FLAGS_events_file_keep);
    if (!file.ok()) {
      fprintf(stderr, "egressd: --events_file: %s\n",
              file.status().ToString().c_str());
      return 1;
    }
    sinks.push_back(*std::move(file));
  }
  if (FLAGS_events_syslog) sinks.push_back(egress::SyslogSink("egressd"));
  if (!sinks.empty()) {
    opts.event_sink = egress::FanOut(std::move(sinks));
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
