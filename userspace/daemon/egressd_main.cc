// egressd: loads, attaches and pins egress's BPF programs, owns the maps and
// serves egressctl. Enforcement outlives the process: stopping or killing
// egressd leaves every target enforced; `egressctl target remove` lifts it.
#include <gflags/gflags.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "egress/version.h"
#include "userspace/daemon/daemon.h"
#include "userspace/daemon/node_name.h"
#include "userspace/events/event_sink.h"

DEFINE_string(socket, "/run/egress/egressd.sock", "control socket path");
DEFINE_string(bpffs, "/sys/fs/bpf/egress", "bpffs directory for pins");
DEFINE_string(bpffs_mount, "/sys/fs/bpf",
              "where bpffs is mounted (mounted there if missing)");
DEFINE_bool(shared_program_set, true,
            "load one BPF program set for every single-cgroup target (each "
            "reads its target id from cgroup storage) instead of one per "
            "target: much faster to add many targets "
            "(--noshared_program_set: a set per target)");
DEFINE_uint64(rescan_interval_ms, 500,
              "walk every target's cgroups this often besides the inotify "
              "events that wake the walk at once (1..3600000): how late a "
              "change no event reports is caught");
DEFINE_string(state_dir, "/var/lib/egress", "directory of the state file");
DEFINE_string(cgroup_root, "",
              "cgroup v2 mount to use (default: found in /proc/self/mountinfo; "
              "in a container, e.g. /host/sys/fs/cgroup)");
DEFINE_string(metrics_addr, "127.0.0.1:9477",
              "Prometheus /metrics and /healthz address (\"\" = off); no "
              "authentication: any address but loopback shows target names "
              "and counters to the network");
DEFINE_string(policy_dir, "",
              "policy files (*.yaml) applied at start and on SIGHUP (\"\" = "
              "none); a rejected directory leaves enforcement unchanged");
DEFINE_uint32(dns_ttl_floor, 30,
              "seconds an address learned from a DNS answer stays allowed at "
              "least, whatever its TTL (1..65535)");
DEFINE_uint64(self_check_interval_ms, 60000,
              "probe every enforcing target from inside its cgroup this "
              "often (a connect its policy denies, in a network namespace "
              "with no route); 0 = never");
DEFINE_string(node_name, "",
              "node named in every record and in suggest/export headers "
              "(\"\" = $NODE_NAME, else the host name; in a pod, set "
              "NODE_NAME from spec.nodeName)");
DEFINE_string(docker_socket, "/run/docker.sock",
              "the Docker Engine API socket followed for --container and "
              "--selector targets (\"\" = none)");
DEFINE_string(podman_socket, "",
              "Podman's Docker-compatible API socket (`podman system "
              "service`; rootful: /run/podman/podman.sock), followed for "
              "--container and --selector targets too (\"\" = none)");
DEFINE_string(containerd_socket, "/run/containerd/containerd.sock",
              "containerd's API socket, followed for --pod and "
              "--pod-selector targets (the pods the kubelet made through "
              "CRI; \"\" = none)");
DEFINE_string(containerd_namespace, "k8s.io",
              "the containerd namespace of the pods (CRI's is k8s.io)");
DEFINE_string(container_parent, "",
              "the cgroup (below the cgroup2 mount) whose children are the "
              "containers: watched so that a container a target selects is "
              "enforced from its first instruction, also while egressd is "
              "down (\"\" = the running containers' parent, unless it is a "
              "systemd slice)");
DEFINE_string(unclassified_containers, "deny",
              "what a new container under --container_parent gets until "
              "egressd has classified it: deny or audit");
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

// gflags' own --help lists every flag of every linked library with source
// paths; egressd prints only its own flags, grouped, with their defaults.
DECLARE_bool(help);
DECLARE_bool(helpshort);
DECLARE_bool(helpfull);
DECLARE_bool(version);

namespace {

struct FlagGroup {
  const char* title;
  std::vector<std::string> flags;
};

const std::vector<FlagGroup>& FlagGroups() {
  static const auto* groups = new std::vector<FlagGroup>{
      {"Control and state", {"socket", "state_dir"}},
      {"Kernel",
       {"bpffs", "bpffs_mount", "cgroup_root", "shared_program_set",
        "rescan_interval_ms"}},
      {"Containers",
       {"docker_socket", "podman_socket", "containerd_socket",
        "containerd_namespace", "container_parent", "unclassified_containers"}},
      {"Policies", {"policy_dir", "dns_ttl_floor"}},
      {"Events",
       {"events", "node_name", "events_file", "events_file_max_bytes",
        "events_file_keep", "events_syslog"}},
      {"Metrics", {"metrics_addr"}},
      {"Self-check", {"self_check_interval_ms"}},
  };
  return *groups;
}

std::string FlagText(const gflags::CommandLineFlagInfo& f) {
  const std::string value = f.type == "string"
                                ? absl::StrCat("\"", f.default_value, "\"")
                                : f.default_value;
  return absl::StrCat("  --", f.name, " (", f.type, ", default ", value,
                      ")\n      ", f.description, "\n");
}

// The flags defined in this file, under their groups' titles.
std::string UsageText() {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::string out =
      "usage: egressd [OPTIONS]\n\n"
      "Loads egress's BPF programs, enforces each target's allow and deny\n"
      "rules in the kernel and serves egressctl. Enforcement outlives\n"
      "egressd; 'egressctl target remove' lifts it. SIGHUP re-applies\n"
      "--policy_dir. Flags: --name=value; booleans also --name, --noname.\n";
  std::vector<gflags::CommandLineFlagInfo> ungrouped;
  for (const gflags::CommandLineFlagInfo& f : all) {
    if (f.filename == __FILE__) ungrouped.push_back(f);
  }
  for (const FlagGroup& g : FlagGroups()) {
    std::string text;
    for (const std::string& name : g.flags) {
      for (auto it = ungrouped.begin(); it != ungrouped.end(); ++it) {
        if (it->name != name) continue;
        absl::StrAppend(&text, FlagText(*it));
        ungrouped.erase(it);
        break;
      }
    }
    if (!text.empty()) absl::StrAppend(&out, "\n", g.title, ":\n", text);
  }
  // A flag added without a group is still shown.
  if (!ungrouped.empty()) absl::StrAppend(&out, "\nOther:\n");
  for (const gflags::CommandLineFlagInfo& f : ungrouped) {
    absl::StrAppend(&out, FlagText(f));
  }
  absl::StrAppend(&out,
                  "\nInformation:\n  --help     this text\n"
                  "  --version  the version and the BPF ABI version\n");
  return out;
}

// Parses the flags; for --help and --version prints and returns 0 (the exit
// status), otherwise -1: egressd runs.
int ParseFlags(int* argc, char*** argv) {
  gflags::SetVersionString(
      absl::StrCat(EGRESS_VERSION_STRING, " (ABI ", EGRESS_ABI_VERSION, ")"));
  gflags::ParseCommandLineNonHelpFlags(argc, argv, true);
  if (FLAGS_help || FLAGS_helpshort || FLAGS_helpfull) {
    fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (FLAGS_version) {
    printf("egressd %s\n", gflags::VersionString());
    return 0;
  }
  return -1;
}

}  // namespace

// Each target holds about 13 descriptors (its links and programs), so the
// soft limit a service gets by default (1,024 under systemd) stopped
// `target add` at about 72 targets. The soft limit goes to the hard one, as
// a daemon that holds descriptors per object should do; a low hard limit is
// said, with what to change.
static void RaiseOpenFileLimit() {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    const rlim_t was = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = was;
  }
  constexpr rlim_t kEnough = 65536;
  if (lim.rlim_cur < kEnough) {
    fprintf(stderr,
            "egressd: open files limited to %llu (about 13 per target): "
            "raise the hard limit (LimitNOFILE= in the unit, ulimit -Hn) "
            "for more than %llu targets\n",
            static_cast<unsigned long long>(lim.rlim_cur),
            static_cast<unsigned long long>(lim.rlim_cur / 13));
  }
}

int main(int argc, char** argv) {
  if (int code = ParseFlags(&argc, &argv); code >= 0) return code;
  // glibc raises its trim threshold to twice the largest mmapped block freed
  // (up to 64 MiB), and malloc_trim never trims the top of a thread's arena:
  // after one large change (a 20 MB apply, decoded on the worker thread)
  // egressd kept ~20 MiB it no longer used, with 100,000 rules and after
  // they were removed. A fixed threshold (which also fixes the mmap threshold
  // at its 128 KiB default) gives memory back when it is freed.
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // A closed stdout pipe must cost records (counted by the sink), not the
  // daemon.
  signal(SIGPIPE, SIG_IGN);
  // Everything egressd creates is root's alone: the state databases (every
  // rule and comment) and their -wal/-shm, pins, lock files, the event log.
  // The control socket sets its own mode (0600).
  umask(077);
  RaiseOpenFileLimit();
  egress::DaemonOptions opts;
  opts.socket_path = FLAGS_socket;
  opts.bpffs_dir = FLAGS_bpffs;
  opts.bpffs_mount = FLAGS_bpffs_mount;
  opts.shared_program_set = FLAGS_shared_program_set;
  opts.state_dir = FLAGS_state_dir;
  opts.cgroup_root = FLAGS_cgroup_root;
  opts.metrics_addr = FLAGS_metrics_addr;
  opts.policy_dir = FLAGS_policy_dir;
  opts.docker_socket = FLAGS_docker_socket;
  opts.podman_socket = FLAGS_podman_socket;
  opts.containerd_socket = FLAGS_containerd_socket;
  opts.containerd_namespace = FLAGS_containerd_namespace;
  opts.container_parent = FLAGS_container_parent;
  if (FLAGS_unclassified_containers != "deny" &&
      FLAGS_unclassified_containers != "audit") {
    fprintf(stderr,
            "egressd: --unclassified_containers: expected deny or audit, got "
            "\"%s\"\n",
            FLAGS_unclassified_containers.c_str());
    return 1;
  }
  opts.unclassified_audit = FLAGS_unclassified_containers == "audit";
  if (FLAGS_dns_ttl_floor < 1 || FLAGS_dns_ttl_floor > 65535) {
    fprintf(stderr, "egressd: --dns_ttl_floor: %u is not in 1..65535\n",
            FLAGS_dns_ttl_floor);
    return 1;
  }
  opts.dns_ttl_floor = FLAGS_dns_ttl_floor;
  opts.self_check_interval = absl::Milliseconds(FLAGS_self_check_interval_ms);
  opts.rescan_interval = absl::Milliseconds(FLAGS_rescan_interval_ms);
  auto node_name = egress::ChooseNodeName(FLAGS_node_name, getenv("NODE_NAME"),
                                          egress::HostName());
  if (!node_name.ok()) {
    fprintf(stderr, "egressd: %s\n", node_name.status().ToString().c_str());
    return 1;
  }
  opts.node_name = *std::move(node_name);
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
  if (!sinks.empty()) opts.event_sink = egress::FanOut(std::move(sinks));
  auto daemon = egress::Daemon::Create(opts);
  if (!daemon.ok()) {
    fprintf(stderr, "egressd: %s\n", daemon.status().ToString().c_str());
    sd_notifyf(0, "STATUS=failed to start: %s",
               std::string(daemon.status().message()).c_str());
    return 1;
  }
  // Create() restored and attached every target and applied --policy_dir:
  // only now may units ordered After=egressd.service start (Type=notify).
  // Without NOTIFY_SOCKET (not under systemd) this does nothing.
  sd_notify(0, "READY=1\nSTATUS=enforcing");
  absl::Status st = (*daemon)->Run(nullptr);
  sd_notify(0, "STOPPING=1");
  if (!st.ok()) {
    fprintf(stderr, "egressd: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
