#include "userspace/cli/run_command.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/cli/daemon_call.h"
#include "userspace/cli/run_identity.h"
#include "userspace/cli/run_seccomp.h"
#include "userspace/cli/run_supervisor.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/cgroup.h"

namespace egress::cli {
namespace {

volatile sig_atomic_t g_child = 0;

void Forward(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

// How long the processes of the run's cgroup may take to die.
constexpr absl::Duration kEmptyTimeout = absl::Seconds(5);

// Writes "1" to a cgroup control file; false where it does not exist (e.g.
// cgroup.kill before Linux 5.14).
bool WriteOne(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return fd && write(fd.get(), "1", 1) == 1;
}

// Whether a process is left in the cgroup or below it ("populated 1" in
// cgroup.events); a cgroup that is gone holds none.
bool Populated(const std::string& abs) {
  std::ifstream events(abs + "/cgroup.events");
  if (!events) return access(abs.c_str(), F_OK) == 0;
  std::string key;
  int value = 1;
  while (events >> key >> value) {
    if (key == "populated") return value != 0;
  }
  return true;
}

// SIGKILL to every process of the cgroup and of the cgroups below it.
void KillEach(const std::string& abs) {
  std::vector<std::string> dirs = {abs};
  for (size_t i = 0; i < dirs.size() && i < 4096; ++i) {
    std::ifstream procs(dirs[i] + "/cgroup.procs");
    for (pid_t pid; procs >> pid;) kill(pid, SIGKILL);
    for (const std::string& sub : SubdirNames(dirs[i])) {
      dirs.push_back(absl::StrCat(dirs[i], "/", sub));
    }
  }
}

// Stops every process the command left in its cgroup and waits until none
// is left: only then may its target go, or a leftover would run unenforced.
// cgroup.kill takes the whole subtree at once; without it the subtree is
// frozen first, so that nothing forks while each process gets SIGKILL (a
// frozen process still dies of it).
absl::Status StopEverything(const std::string& abs) {
  const absl::Time deadline = absl::Now() + kEmptyTimeout;
  const bool kill_file = WriteOne(abs + "/cgroup.kill");
  if (!kill_file) WriteOne(abs + "/cgroup.freeze");
  while (Populated(abs)) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("processes of the command are still in ", abs, " after ",
                       absl::FormatDuration(kEmptyTimeout)));
    }
    if (!kill_file) KillEach(abs);
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

// Removes the run's (empty) cgroup.
void RemoveCgroup(const std::string& abs) {
  for (int i = 0; i < 100 && rmdir(abs.c_str()) != 0 && errno == EBUSY; ++i) {
    usleep(20000);
  }
  // The shared parent goes too once no other run uses it (ENOTEMPTY else).
  rmdir(abs.substr(0, abs.rfind('/')).c_str());
}

absl::Status RemoveTarget(const std::string& socket, const std::string& name) {
  return CallEgressd(socket, control::TargetRemoveRequest{name},
                     absl::Seconds(30))
      .status();
}

// After the command exited: stops what it left behind, and only then lifts
// enforcement (a leftover must never run unenforced) and removes the cgroup.
// Problems go to stderr: `run` returns the command's exit code.
void Finish(const std::string& socket, const std::string& name,
            const std::string& abs) {
  if (absl::Status stop = StopEverything(abs); !stop.ok()) {
    fprintf(stderr,
            "egressctl run: %s; target %s stays in force: kill them, then "
            "run 'egressctl target remove %s'\n",
            stop.ToString().c_str(), name.c_str(), name.c_str());
    return;
  }
  absl::Status rm = RemoveTarget(socket, name);
  RemoveCgroup(abs);
  if (!rm.ok()) {
    fprintf(stderr, "egressctl run: removing target %s: %s\n", name.c_str(),
            rm.ToString().c_str());
  }
}

// The text of a file of the system's user database, at most 16 MiB ("" when
// it cannot be read: then only numeric ids resolve).
std::string UserDatabase(const char* path) {
  std::ifstream in(path);
  std::string out(16 << 20, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

std::string EnvOr(const char* name) {
  const char* v = getenv(name);
  return v == nullptr ? "" : v;
}

// Becomes `id` for good: no capability in any set (bounding and ambient
// too), no way back through a setuid program. In the child, while still
// root (dropping the bounding set needs CAP_SETPCAP).
absl::Status DropTo(const RunIdentity& id) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      return ErrnoStatus(errno, "prctl(PR_CAPBSET_DROP)");
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
      errno != EINVAL) {
    return ErrnoStatus(errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  std::vector<gid_t> groups(id.groups.begin(), id.groups.end());
  if (setgroups(groups.size(), groups.data()) != 0) {
    return ErrnoStatus(errno, "setgroups");
  }
  if (setresgid(id.gid, id.gid, id.gid) != 0) {
    return ErrnoStatus(errno, "setresgid", absl::StrCat(id.gid));
  }
  if (setresuid(id.uid, id.uid, id.uid) != 0) {
    return ErrnoStatus(errno, "setresuid", absl::StrCat(id.uid));
  }
  // setresuid from root clears the permitted and effective sets, not the
  // inheritable one (a file's inheritable capabilities would come back at
  // exec): every set is emptied here, also for uid 0.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) {
    return ErrnoStatus(errno, "capset");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != id.uid || e != id.uid || s != id.uid) {
    return absl::InternalError(
        absl::StrCat("still not uid ", id.uid, " after setresuid"));
  }
  return absl::OkStatus();
}

// The forked child: joins the enforced cgroup before exec, so every socket
// the command opens is created inside it; then loads the run's filter and
// hands its listener to the parent over `sock`. Any failure ends the child
// before exec: the command never runs without what it was promised.
// (egressctl has no other thread, so the child may allocate: seccomp_load
// builds the filter's program.)
[[noreturn]] void ChildMain(const std::string& abs, RunFilter* filter, int sock,
                            const std::optional<RunIdentity>& identity,
                            std::vector<std::string>& run_argv) {
  absl::Status st = MoveToCgroup(abs, getpid());
  // After the move (which needs root), before anything of the command.
  if (st.ok() && identity) st = DropTo(*identity);
  if (st.ok()) {
    absl::StatusOr<bool> confined = ConfineToOwnProcesses();
    if (!confined.ok()) {
      st = confined.status();
    } else if (!*confined) {
      fprintf(stderr,
              "egressctl run: warning: this kernel has no Landlock, so the "
              "command may write to /proc/PID/mem of other processes of its "
              "user (and take their sockets, which no hook of the run "
              "sees)\n");
    }
  }
  if (st.ok() && filter != nullptr) {
    absl::StatusOr<UniqueFd> listener = filter->LoadInChild();
    st = listener.ok() ? SendFd(sock, listener->get()) : listener.status();
  }
  if (!st.ok()) {
    fprintf(stderr, "egressctl run: %s\n", st.ToString().c_str());
    _exit(127);
  }
  std::vector<char*> argv;
  for (std::string& a : run_argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  fprintf(stderr, "egressctl run: cannot run '%s': %s\n", argv[0],
          strerror(errno));
  _exit(127);
}

// The command, started: its pid and the filter's listener (none when
// nothing is refused, or when the child failed before exec).
struct Started {
  pid_t pid = -1;
  UniqueFd listener;
};

absl::StatusOr<Started> StartCommand(const std::string& abs,
                                     const std::optional<RunIdentity>& identity,
                                     ParsedCommand& command) {
  std::optional<RunFilter> filter;
  if (command.run_restrictions.RefusesAnything()) {
    EGRESS_ASSIGN_OR_RETURN(filter,
                            RunFilter::Create(command.run_restrictions));
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus(errno, "socketpair");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  Started started;
  started.pid = fork();
  if (started.pid < 0) return ErrnoStatus(errno, "fork");
  if (started.pid == 0) {
    ChildMain(abs, filter ? &*filter : nullptr, theirs.get(), identity,
              command.run_argv);
  }
  g_child = started.pid;
  theirs.reset();
  if (filter) {
    // NotFound: the child ended before exec and said why.
    absl::StatusOr<UniqueFd> listener = ReceiveFd(ours.get());
    if (listener.ok()) started.listener = *std::move(listener);
  }
  return started;
}

}  // namespace

absl::StatusOr<int> RunUnderPolicy(ParsedCommand command) {
  // Who the command runs as, known before anything is made.
  RunIdentityInputs who;
  who.user = command.run_user;
  who.group = command.run_group;
  who.sudo_uid = EnvOr("SUDO_UID");
  who.sudo_gid = EnvOr("SUDO_GID");
  who.euid = geteuid();
  if (!who.user.empty() || !who.sudo_uid.empty()) {
    who.passwd = UserDatabase("/etc/passwd");
    who.group_file = UserDatabase("/etc/group");
  }
  EGRESS_ASSIGN_OR_RETURN(std::optional<RunIdentity> identity,
                          RunIdentityOf(who));
  if (!identity && who.euid == 0) {
    fprintf(stderr,
            "egressctl run: warning: the command runs as root, which can "
            "move itself out of its cgroup and its policy; --user USER "
            "keeps it in\n");
  }
  EGRESS_ASSIGN_OR_RETURN(std::string root, Cgroup2Root());
  control::TargetSpec& spec =
      std::get<control::TargetAddRequest>(*command.request).spec;
  std::string& name = spec.name;
  if (name.empty()) name = absl::StrCat("run-", getpid());
  std::string rel = absl::StrCat("/egress.run/", name);
  std::string abs = root + rel;
  EGRESS_RETURN_IF_ERROR(MakeDirs(root + "/egress.run", 0755));
  if (mkdir(abs.c_str(), 0755) != 0)
    return ErrnoStatus(errno, "mkdir cgroup", abs);

  spec.source = policy::TargetSource::kCgroup;
  spec.source_value = rel;
  absl::Status st =
      CallEgressd(command.socket_path, *command.request, command.timeout)
          .status();
  if (!st.ok()) {
    RemoveCgroup(abs);
    return st;
  }

  absl::StatusOr<Started> started = StartCommand(abs, identity, command);
  if (!started.ok()) {
    RemoveTarget(command.socket_path, name).IgnoreError();
    RemoveCgroup(abs);
    return started.status();
  }
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  const int wstatus = SuperviseUntilExit(
      started->pid, std::move(started->listener), command.run_restrictions);
  g_child = 0;
  int code =
      WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

  Finish(command.socket_path, name, abs);
  return code;
}

}  // namespace egress::cli
