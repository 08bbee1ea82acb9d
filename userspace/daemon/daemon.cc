#include "userspace/daemon/daemon.h"

#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "egress/version.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/instance_lock.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/passwd.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"
#include "userspace/daemon/control_service.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/event_loop.h"
#include "userspace/daemon/kernel_port_bpf.h"
#include "userspace/daemon/learner.h"
#include "userspace/daemon/metrics.h"
#include "userspace/daemon/metrics_source.h"
#include "userspace/daemon/node_name.h"
#include "userspace/daemon/reconciler.h"
#include "userspace/daemon/record_hub.h"
#include "userspace/daemon/self_check.h"
#include "userspace/daemon/state_store.h"
#include "userspace/daemon/workload_classes.h"
#include "userspace/daemon/workload_targets.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/jiffies_clock.h"
#include "userspace/kernel/netns_cookies.h"
#include "userspace/kernel/unix_hooks.h"

namespace egress {

struct Daemon::Parts {
  DaemonOptions options;
  std::string cgroup_root;
  std::string node_name;
  std::unique_ptr<ControlListener> listener;
  // One egressd per state directory (held to exit; BpfKernel holds the
  // pin directory's).
  UniqueFd state_lock;
  std::unique_ptr<BpfKernel> kernel;
  // Loads the shared program set ahead of the first target (a fresh egressd
  // has none to adopt): the first apply then skips ~0.1 s of verifier work.
  // Joined before the kernel goes (declared after it), also when the start
  // fails half-way.
  struct JoinedThread {
    std::thread thread;
    ~JoinedThread() {
      if (thread.joinable()) thread.join();
    }
  } prepare_shared;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<Learner> learner;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<RecordHub> records;
  std::unique_ptr<SocketPort> sockets;
  std::unique_ptr<ConnectionScan> connections;
  std::unique_ptr<ControlService> service;
  std::unique_ptr<Reconciler> reconciler;
  // Goes after the watchers, whose threads call its NameAhead.
  std::unique_ptr<WorkloadClasses> workload_classes;
  // Before the engine (its seam asks it); its watcher starts after the
  // reconciler it wakes, and stops before it.
  std::unique_ptr<WorkloadTargets> workloads;
  std::optional<SelfCheck> self_check;  // none with --self_check_interval_ms=0
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<MetricsServer> metrics;
  // Pins of an older ABI go once every target is attached under ours
  // (the engine's all_attached) and the start succeeded: a failed start
  // keeps them. all_attached may come during the start (which then retires
  // them once it succeeded) or from a later reconcile.
  enum Retire : int { kStarting, kStartingAllAttached, kStarted, kRetired };
  std::atomic<int> retire{kStarting};
  // Removes the older ABIs' pins the first time it moves `retire` from
  // `from` to kRetired.
  void RetireOlderAbisFrom(int from) {
    if (retire.compare_exchange_strong(from, kRetired)) {
      kernel->RetireOlderAbis();
    }
  }
};

namespace {

void Log(const std::string& line) {
  fprintf(stderr, "egressd: %s\n", line.c_str());
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// What can be refused before anything is locked, made or pinned: a start
// that fails on these leaves no trace.
absl::Status CheckOptions(const DaemonOptions& o) {
  EGRESS_RETURN_IF_ERROR(Reconciler::CheckRescanInterval(o.rescan_interval));
  if (!o.cgroup_root.empty()) {
    struct statfs st;
    if (statfs(o.cgroup_root.c_str(), &st) != 0) {
      return ErrnoStatus(errno, "--cgroup_root", o.cgroup_root);
    }
    if (st.f_type != CGROUP2_SUPER_MAGIC) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cgroup_root ", o.cgroup_root,
                       " is not on a cgroup2 filesystem (mount -t cgroup2)"));
    }
  }
  return absl::OkStatus();
}

// The outermost pin directory this start makes ("" when the version's
// directory was there before: its pins are the enforced state).
std::string PinDirMadeNow(const DaemonOptions& o) {
  if (!Exists(o.bpffs_dir)) return o.bpffs_dir;
  const std::string version = BpfKernel::VersionDir(o.bpffs_dir);
  return Exists(version) ? "" : version;
}

// cgroup2, the state directory, bpffs and the pinned maps. The state and pin
// directories are locked before anything in them is read or written.
absl::Status OpenKernel(Daemon::Parts& p) {
  if (p.options.cgroup_root.empty()) {
    EGRESS_ASSIGN_OR_RETURN(p.cgroup_root, Cgroup2Root());
  } else {
    p.cgroup_root = p.options.cgroup_root;
  }
  const LockHolder me{getpid(), p.options.socket_path};
  // Root's alone whatever was there before (a hostPath made 0755, a
  // directory of another owner): the databases hold every rule.
  EGRESS_RETURN_IF_ERROR(MakePrivateDir(p.options.state_dir, Log));
  EGRESS_ASSIGN_OR_RETURN(
      p.state_lock, LockDirectory(p.options.state_dir, "state directory", me));
  // The pin root made root's alone first, saying what it changed (a bpffs
  // mounted without mode= lets any user make directories in it).
  EGRESS_RETURN_IF_ERROR(
      EnsureBpffsDir(p.options.bpffs_dir, p.options.bpffs_mount, Log));
  EGRESS_ASSIGN_OR_RETURN(
      p.kernel,
      BpfKernel::Open(p.options.bpffs_dir, p.options.bpffs_mount, p.cgroup_root,
                      me, p.options.shared_program_set));
  if (std::string warning = UnixHooksWarning(); !warning.empty()) {
    Log(warning);
  }
  if (std::string warning = NetnsCookieWarning(); !warning.empty()) {
    Log(warning);
  }
  if (std::string warning = JiffiesClockWarning(); !warning.empty()) {
    Log(warning);
  }
  return absl::OkStatus();
}

EngineOptions EngineOptionsOf(Daemon::Parts& p) {
  EngineOptions o;
  o.save = [&p](const StateWrite& w) { return p.store->Write(w); };
  // On a thread of the apply's own while the worker compiles: the store's
  // connection is still used by one thread at a time (Engine::Apply waits
  // for this before it saves anything else).
  o.save_rules_ahead = [&p](const std::vector<const TargetState*>& targets) {
    return p.store->WriteRulesAhead(targets);
  };
  o.drop_rules_ahead = [&p](const std::vector<std::string>& names) {
    return p.store->DropRulesAhead(names);
  };
  o.unit_cgroup = [](const std::string& unit) { return CgroupOfUnit(unit); };
  o.pid_cgroup = [](int pid) { return CgroupOfPid(pid); };
  o.user_uid = [](const std::string& name) { return UidOfUserName(name); };
  o.normalize_cgroup = [root = p.cgroup_root](const std::string& path) {
    return NormalizeCgroupPath(path, root);
  };
  o.workload_cgroups = [&p](const TargetState& t) {
    return p.workloads->CgroupsOf(t);
  };
  o.workload_pass_begin = [&p] { p.workloads->BeginPass(); };
  o.workload_pass_end = [&p] { p.workloads->EndPass(); };
  o.log = Log;
  o.dns_ttl_floor = static_cast<uint16_t>(p.options.dns_ttl_floor);
  // The first change after an apply or a start writes only its difference.
  o.background_spares = true;
  // An older version's programs go only once ours enforce every target.
  // During the start this only records that it fired (Create retires
  // after success); once started it retires.
  o.all_attached = [&p] {
    int starting = Daemon::Parts::kStarting;
    if (p.retire.compare_exchange_strong(starting,
                                         Daemon::Parts::kStartingAllAttached)) {
      return;
    }
    p.RetireOlderAbisFrom(Daemon::Parts::kStarted);
  };
  return o;
}

// The state, what was learned, and the kernel brought in line with them.
absl::Status StartEngine(Daemon::Parts& p) {
  EGRESS_ASSIGN_OR_RETURN(p.store, StateStore::Open(p.options.state_dir, Log));
  EGRESS_ASSIGN_OR_RETURN(DaemonState state, p.store->Load());
  // An apply that crashed after writing rows ahead left them, and a stop
  // can cut short the delete of the rows a switched or removed target left;
  // nothing can be ahead now.
  // No room to drop them: they stay skipped (Load) until a start can.
  absl::StatusOr<size_t> dropped = p.store->DropLeftoverRows();
  if (!dropped.ok() && !absl::IsResourceExhausted(dropped.status())) {
    return dropped.status();
  }
  const size_t leftovers = dropped.ok() ? *dropped : 0;
  if (leftovers > 0) {
    Log(absl::StrCat("state: dropped the rows of rules no target holds (",
                     leftovers,
                     " target name(s)): left by an interrupted apply or by "
                     "a stop before old or removed rules were deleted"));
  }
  p.workloads = std::make_unique<WorkloadTargets>(
      WorkloadTargets::Runtimes{
          p.options.docker_socket, p.options.containerd_socket,
          p.options.containerd_namespace, p.options.podman_socket},
      p.cgroup_root);
  p.learner = std::make_unique<Learner>(p.options.state_dir, LearnLimits{},
                                        p.options.dns_ttl_floor);
  EGRESS_RETURN_IF_ERROR(p.learner->Load());
  p.engine =
      std::make_unique<Engine>(*p.kernel, std::move(state), EngineOptionsOf(p));
  EGRESS_ASSIGN_OR_RETURN(bool all_attached,
                          p.engine->Start(absl::ToUnixSeconds(absl::Now())));
  if (all_attached) p.engine->NotifyAllAttached();
  return absl::OkStatus();
}

ServiceOptions ServiceOptionsOf(Daemon::Parts& p) {
  ServiceOptions o;
  o.node_name = p.node_name;
  o.bpffs_dir = p.options.bpffs_dir;
  o.cgroup_root = p.cgroup_root;
  o.policy_dir = p.options.policy_dir;
  o.version = EGRESS_VERSION_STRING;
  o.metrics_port = [&p]() -> uint64_t {
    return p.metrics ? p.metrics->port() : 0;
  };
  o.events_read = [&p] { return p.records->records_read(); };
  o.events_dropped = [&p] { return p.records->records_dropped(); };
  o.events_sink_errors = [&p] { return p.records->sink_errors(); };
  o.now = [] { return absl::ToUnixSeconds(absl::Now()); };
  o.connections = p.connections.get();
  o.workload_warnings = [&p](const control::TargetInfo& t) {
    return p.workloads->Warnings(t.name, t.source, t.source_value);
  };
  o.name_workloads = [&p](std::vector<control::CgroupRef>* cgroups) {
    p.workloads->NameCgroups(cgroups);
  };
  o.state_error = [&p] { return p.store->Unwritable(); };
  o.self_check_problem = [&p](uint32_t id) -> std::string {
    return p.self_check ? p.self_check->ProbeProblem(id) : "";
  };
  o.log = Log;
  return o;
}

absl::Status StartMetrics(Daemon::Parts& p) {
  if (p.options.metrics_addr.empty()) return absl::OkStatus();
  auto source = [&p] {
    DaemonCounters c;
    c.events_read = p.records->records_read();
    c.events_dropped = p.records->records_dropped();
    c.events_sink_errors = p.records->sink_errors();
    c.last_reload_ok = p.service->last_reload_ok();
    c.dns_bindings = p.service->DnsBindings();
    c.shared_program_set_loaded = p.kernel->SharedSetLoaded();
    return CollectMetrics(*p.engine, *p.kernel, c,
                          NodeView{p.node_name, p.workloads->Running()});
  };
  // Healthy while the loop turns (it drains every 50 ms) and egressctl
  // reaches it: not while its control socket is gone from the path.
  auto healthy = [&p] {
    int64_t last = p.loop->heartbeat_ns();
    return p.loop->socket_at_path() &&
           (last == 0 ||
            absl::GetCurrentTimeNanos() - last < int64_t{5'000'000'000});
  };
  EGRESS_ASSIGN_OR_RETURN(
      p.metrics, MetricsServer::Start(p.options.metrics_addr, source, healthy));
  return absl::OkStatus();
}

// Records, the control service, the policy directory, the loop, metrics.
absl::Status StartServices(Daemon::Parts& p) {
  p.node_name = p.options.node_name.empty() ? HostName() : p.options.node_name;
  RecordHubOptions hub;
  hub.node_name = p.node_name;
  hub.sink = p.options.event_sink;
  hub.container_of = [&p](uint64_t cgroup_id, const std::string& path,
                          const std::string& target) {
    return p.workloads->ContainerOf(cgroup_id, path, target);
  };
  EGRESS_ASSIGN_OR_RETURN(hub.sweeper,
                          LimitSweeper::Load(p.kernel->maps().dir().c_str()));
  EGRESS_ASSIGN_OR_RETURN(
      p.records, RecordHub::Create(p.kernel->maps().events_fd(), *p.engine,
                                   *p.learner, std::move(hub)));
  p.sockets = NewKernelSocketPort(p.cgroup_root);
  p.connections = std::make_unique<ConnectionScan>(
      *p.engine, *p.sockets,
      [&p](const egress_event& e) { p.records->Publish(e); });
  p.service = std::make_unique<ControlService>(*p.engine, *p.kernel, *p.learner,
                                               *p.records, ServiceOptionsOf(p));
  if (!p.options.policy_dir.empty()) {
    // Before serving: what the directory says is enforced when egressd
    // answers its first request.
    LogReload("start", p.service->Reload(), p.options.policy_dir);
  }
  WorkloadClassesOptions classes;
  classes.cgroup_root = p.cgroup_root;
  classes.parent = p.options.container_parent;
  classes.unclassified = p.options.unclassified_audit
                             ? Engine::WorkloadDefault::kAudit
                             : Engine::WorkloadDefault::kDeny;
  classes.log = Log;
  p.workload_classes = std::make_unique<WorkloadClasses>(
      *p.engine, *p.workloads, std::move(classes));
  EGRESS_ASSIGN_OR_RETURN(
      p.reconciler,
      Reconciler::Start(*p.engine, p.cgroup_root, p.options.rescan_interval,
                        [&p] { p.workload_classes->Update(); }));
  // A container created is named at once, ahead of the pass; one that
  // starts or goes wakes the reconciler at once.
  EGRESS_RETURN_IF_ERROR(p.workloads->Start(
      [&p] {
        p.workload_classes->NameAhead();
        p.reconciler->Poke();
      },
      Log));
  if (p.options.self_check_interval > absl::ZeroDuration()) {
    SelfCheckOptions check;
    check.interval = p.options.self_check_interval;
    check.cgroup_root = p.cgroup_root;
    check.publish = [&p](const egress_event& e) { p.records->Publish(e); };
    check.log = Log;
    p.self_check.emplace(*p.engine, std::move(check));
    p.self_check->Start();
  }
  LoopOptions loop;
  loop.socket_path = p.options.socket_path;
  loop.cgroup_root = p.cgroup_root;
  loop.policy_dir = p.options.policy_dir;
  loop.classify_workloads = [&p] { p.workload_classes->Update(); };
  // The state directory's lock (the pin directory's is BpfKernel's, taken
  // again when it repairs the pins).
  loop.check_locks = [&p, me = LockHolder{getpid(), p.options.socket_path},
                      last = std::string()]() mutable {
    std::string note = KeepDirectoryLocked(
        p.options.state_dir, "state directory", me, &p.state_lock);
    if (!note.empty() && note != last) Log(note);  // once, not every second
    last = note;
  };
  p.loop =
      std::make_unique<EventLoop>(*p.listener, *p.engine, *p.service,
                                  *p.learner, *p.records, *p.reconciler, loop);
  return StartMetrics(p);
}

}  // namespace

Daemon::Daemon(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Daemon::~Daemon() {
  // The metrics server and the self-check read the other parts: they go
  // first.
  if (parts_) parts_->metrics.reset();
  if (parts_) parts_->self_check.reset();
  // A reconciler pass reads the watcher and the workload classes: it ends
  // before they go (the watcher may still poke it; that does nothing now).
  if (parts_ && parts_->reconciler) parts_->reconciler->Stop();
  if (parts_ && parts_->workloads) parts_->workloads.reset();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(DaemonOptions options) {
  // Signals wait for the loop's signalfd: a SIGHUP or SIGTERM during start-up
  // is handled once the state is consistent, never by dying half-way.
  sigset_t mask = HandledSignals();
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  EGRESS_RETURN_IF_ERROR(CheckOptions(options));
  auto p = std::make_unique<Parts>();
  p->options = std::move(options);
  const std::string made_now = PinDirMadeNow(p->options);
  // Listening first: a second egressd on the same socket stops here, before
  // it touches the state, the maps or the policy directory; one on another
  // socket stops at the locks of the state and pin directories (OpenKernel).
  // Requests wait in the backlog until Run() serves them.
  EGRESS_ASSIGN_OR_RETURN(ControlListener listener,
                          ControlListener::Listen(p->options.socket_path));
  p->listener = std::make_unique<ControlListener>(std::move(listener));
  absl::Status opened = OpenKernel(*p);
  if (!opened.ok()) {
    // Pins are made only once the pin directory is locked (BpfKernel::Open):
    // without it, what is there may be another egressd's.
    if (p->kernel) return FailedStart(std::move(p), made_now, opened);
    return opened;
  }
  if (absl::Status st = StartParts(*p); !st.ok()) {
    return FailedStart(std::move(p), made_now, st);
  }
  if (p->retire.exchange(Parts::kStarted) == Parts::kStartingAllAttached) {
    p->RetireOlderAbisFrom(Parts::kStarted);
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(p)));
}

absl::Status Daemon::FailedStart(std::unique_ptr<Parts> p,
                                 const std::string& made_now,
                                 absl::Status why) {
  // The lock outlives the parts: no other egressd takes the directory while
  // its pins go.
  UniqueFd lock = p->kernel->TakePinsLock();
  // Targets from the state (after a reboot: pins gone, state kept) or the
  // policy directory that this start attached stay enforced by their pins
  // until a start succeeds: removing them would lift enforcement
  // (fail-closed), and the next start adopts them.
  const size_t enforced = p->engine ? p->engine->TargetCount() : 0;
  // Threads stopped and every fd of a link, program or map closed: removing
  // a pin then detaches its link.
  { Daemon gone(std::move(p)); }
  if (made_now.empty()) return why;
  if (enforced > 0) {
    Log(absl::StrCat("kept ", made_now, " though this start made it: its ",
                     enforced,
                     " target(s) stay enforced until egressd starts"));
    return why;
  }
  if (absl::Status rm = RemoveTree(made_now); !rm.ok()) {
    Log(absl::StrCat("cannot remove the pins this failed start made: ",
                     rm.ToString()));
  } else {
    Log(absl::StrCat("removed ", made_now, ": this start made it and failed"));
  }
  return why;
}

absl::Status Daemon::StartParts(Parts& p) {
  EGRESS_RETURN_IF_ERROR(StartEngine(p));
  // After the engine adopted the targets (which load the set if they use
  // it): usually a no-op then, else off the start path. A failure is said
  // again by the first target that needs the set.
  p.prepare_shared.thread = std::thread([kernel = p.kernel.get()] {
    if (absl::Status s = kernel->PrepareSharedSet(); !s.ok()) {
      Log(absl::StrCat("the shared program set is not loaded ahead: ",
                       s.ToString()));
    }
  });
  return StartServices(p);
}

absl::Status Daemon::Run(const std::atomic<bool>* stop) {
  return parts_->loop->Run(stop);
}

}  // namespace egress
