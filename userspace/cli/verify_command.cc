#include "userspace/cli/verify_command.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "userspace/cli/daemon_call.h"
#include "userspace/cli/verify_plan.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

using nlohmann::json;

// One connect() from this process: the errno (0 = connected or still
// connecting after the wait: not blocked by egress either way).
bool IsContainer(const control::TargetInfo& t) {
  return policy::IsWorkloadSource(t.source);
}

int Attempt(const Probe& p) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, p.address.c_str(),
                &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = family = AF_INET;
    sin->sin_port = htons(p.port);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET6, p.address.c_str(), &sin6->sin6_addr) != 1)
      return EINVAL;
    sin6->sin6_family = family = AF_INET6;
    sin6->sin6_port = htons(p.port);
    len = sizeof(sockaddr_in6);
  }
  const bool tcp = p.proto == policy::Proto::kTcp;
  int fd = socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  int err = 0;
  // UDP: connect() only sets the peer; no packet is sent.
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd pfd = {fd, POLLOUT, 0};
      err = 0;
      if (poll(&pfd, 1, 1000) == 1) {
        socklen_t l = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
      }
    }
  }
  close(fd);
  return err;
}

// Runs every probe in a child that joins `cgroup_abs` (and, for a user
// target, becomes its user); the errnos in order.
// The cgroup directories right below `cgroup_abs` (at most `max`).
std::vector<std::string> ChildCgroups(const std::string& cgroup_abs,
                                      size_t max) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(cgroup_abs, ec);
       !ec && it != std::filesystem::directory_iterator() && out.size() < max;
       it.increment(ec)) {
    if (it->is_directory(ec)) out.push_back(it->path().string());
  }
  return out;
}

// The network namespace of a process of the cgroup at `cgroup_abs` or, for
// a pod's cgroup, whose processes are in its containers' cgroups, of one
// below it (the workload's own: a container's may have no route to what
// its policy allows); an invalid fd when there is no process.
UniqueFd NetnsOfCgroup(const std::string& cgroup_abs, int depth = 2) {
  std::ifstream procs(cgroup_abs + "/cgroup.procs");
  std::string pid;
  while (std::getline(procs, pid)) {
    UniqueFd ns(open(absl::StrCat("/proc/", pid, "/ns/net").c_str(),
                     O_RDONLY | O_CLOEXEC));
    if (ns) return ns;
  }
  if (depth == 0) return UniqueFd();
  for (const std::string& child : ChildCgroups(cgroup_abs, 64)) {
    if (UniqueFd ns = NetnsOfCgroup(child, depth - 1)) return ns;
  }
  return UniqueFd();
}

absl::StatusOr<std::vector<int>> ProbeFromCgroup(
    const std::string& cgroup_abs, const std::vector<Probe>& probes,
    std::optional<uint32_t> uid, bool in_workload_netns) {
  UniqueFd netns;
  std::string join = cgroup_abs;
  absl::Cleanup remove_leaf = [&join, &cgroup_abs] {
    if (join != cgroup_abs) rmdir(join.c_str());
  };
  if (in_workload_netns) {
    netns = NetnsOfCgroup(cgroup_abs);
    if (!netns) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no process in ", cgroup_abs, " to take the network namespace of"));
    }
    // A pod's cgroup holds its containers' cgroups and no process of its
    // own (cgroup v2 allows none there once controllers are enabled): the
    // probe runs in a leaf of its own below it, under the pod's policy.
    if (!ChildCgroups(cgroup_abs, 1).empty()) {
      const std::string leaf =
          absl::StrCat(cgroup_abs, "/egress-verify-", getpid());
      if (mkdir(leaf.c_str(), 0755) != 0) {
        return ErrnoStatus(errno, absl::StrCat("mkdir ", leaf));
      }
      join = leaf;
    }
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    close(fds[0]);
    if (netns && setns(netns.get(), CLONE_NEWNET) != 0) _exit(6);
    std::ofstream procs(join + "/cgroup.procs");
    procs << "0" << std::flush;
    if (!procs) _exit(3);
    if (uid.has_value() &&
        (setgroups(0, nullptr) != 0 || setresgid(*uid, *uid, *uid) != 0 ||
         setresuid(*uid, *uid, *uid) != 0)) {
      _exit(5);
    }
    for (const Probe& p : probes) {
      int r = Attempt(p);
      if (write(fds[1], &r, sizeof(r)) != sizeof(r)) _exit(4);
    }
    _exit(0);
  }
  close(fds[1]);
  std::vector<int> out;
  int r;
  while (read(fds[0], &r, sizeof(r)) == sizeof(r)) out.push_back(r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(
        "the probe process could not join ", cgroup_abs,
        WIFEXITED(status) && WEXITSTATUS(status) == 3 ? " (cgroup.procs)"
        : WIFEXITED(status) && WEXITSTATUS(status) == 6
            ? " (its network namespace)"
            : ""));
  }
  return out;
}

// The target to verify, as `status` and `list` describe it.
struct Subject {
  control::TargetInfo info;
  std::vector<policy::Rule> rules;
  std::string cgroup;  // relative; a pattern target's first match
  std::string cgroup_root;
};

absl::StatusOr<Subject> LoadSubject(const ParsedCommand& command) {
  const std::string& socket = command.socket_path;
  EGRESS_ASSIGN_OR_RETURN(
      auto status, CallFor<control::StatusResponse>(
                       socket, control::StatusRequest{}, command.timeout));
  EGRESS_ASSIGN_OR_RETURN(
      auto list, CallFor<control::ListResponse>(socket, *command.request,
                                                command.timeout));
  if (list.targets.size() != 1) {
    return absl::InvalidArgumentError("name the target with --target NAME");
  }
  Subject s;
  s.cgroup_root = status.cgroup_root;
  for (const control::NumberedRule& n : list.targets[0].rules) {
    s.rules.push_back(n.rule);
  }
  for (const control::TargetInfo& t : status.targets) {
    if (t.name == list.targets[0].target) s.info = t;
  }
  if (s.info.name.empty()) return absl::NotFoundError("target vanished");
  // A user target: probes run as its uid, from the root its programs are
  // attached to (any cgroup would do).
  s.cgroup = s.info.source == policy::TargetSource::kUser ? std::string("/")
                                                          : s.info.cgroup;
  if (s.info.source == policy::TargetSource::kPattern || IsContainer(s.info)) {
    s.cgroup = s.info.cgroups.empty() ? "" : s.info.cgroups[0].path;
  }

  return s;
}

// What is wrong before any probe: no cgroup, detached hooks, audit mode.
std::vector<std::string> StateProblems(const Subject& s) {
  std::vector<std::string> problems;
  if (!s.info.cgroup_exists || s.cgroup.empty()) {
    problems.push_back("its cgroup does not exist: nothing to enforce on");
  } else if (!s.info.attached) {
    problems.push_back(absl::StrCat("only ", s.info.hooks_attached, " of ",
                                    s.info.hooks_total,
                                    " hooks are attached to its cgroup"));
  }
  if (s.info.mode == policy::Mode::kAudit) {
    problems.push_back("audit mode: nothing is blocked, only recorded");
  }
  // Name rules allow only what the target's own DNS answers taught the
  // kernel: a process that resolves without DNS sockets learns nothing.
  if (s.info.dns) {
    for (const std::string& w : s.info.dns->resolver_warnings) {
      problems.push_back(absl::StrCat("names cannot be learned: ", w));
    }
  }
  return problems;
}

// A connect error that says the destination cannot be reached from the
// network namespace probed (nothing to do with egress).
bool Unreachable(int err) {
  return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH ||
         err == ETIMEDOUT;
}

// A container's probes run in its network namespace: a destination its
// policy allows that it cannot reach there (`--network none`) is a problem,
// where on the host it only means that nothing listens.
json ProbeResult(const Probe& p, int err, bool in_workload_netns,
                 std::vector<std::string>* problems) {
  // No IPv6 (or no such socket kind) on this host: nothing to learn.
  const bool skipped = err == EAFNOSUPPORT || err == EPROTONOSUPPORT;
  const bool blocked = err == EPERM;
  const bool ok = skipped || p.expect_allowed != blocked;
  const std::string dest = p.address.find(':') != std::string::npos
                               ? absl::StrCat("[", p.address, "]:", p.port)
                               : absl::StrCat(p.address, ":", p.port);
  const std::string result =
      skipped    ? absl::StrCat("skipped (", strerror(err), ")")
      : blocked  ? std::string("blocked (EPERM)")
      : err == 0 ? std::string("not blocked")
                 : absl::StrCat("not blocked (", strerror(err), ")");
  if (ok && in_workload_netns && p.expect_allowed && Unreachable(err)) {
    problems->push_back(absl::StrCat(
        dest, "/", policy::ProtoName(p.proto),
        " is allowed by the policy but unreachable from the container's "
        "network namespace (",
        strerror(err), ")"));
  } else if (!ok) {
    problems->push_back(absl::StrCat(
        dest, "/", policy::ProtoName(p.proto),
        p.expect_allowed ? " is allowed by the policy but blocked"
                         : " should be denied but got through egress"));
  }
  return {{"ok", ok},
          {"expect", p.expect_allowed ? "allow" : "deny"},
          {"proto", policy::ProtoName(p.proto)},
          {"destination", dest},
          {"result", result},
          {"why", p.why}};
}

void PrintText(const Subject& s, const json& report) {
  const std::string where =
      s.info.source == policy::TargetSource::kUser
          ? control::TargetWhere(s.info)
          : absl::StrCat("cgroup ", s.cgroup.empty() ? "(none)" : s.cgroup);
  printf("Target %s (%s), %s: %lu/%lu hooks attached\n", s.info.name.c_str(),
         policy::ModeName(s.info.mode).c_str(), where.c_str(),
         static_cast<unsigned long>(s.info.hooks_attached),
         static_cast<unsigned long>(s.info.hooks_total));
  if (s.info.mode == policy::Mode::kAudit) {
    printf(
        "  no probes: in audit mode every one would get through, and it would "
        "be learned as the target's own traffic\n");
  }
  for (const json& r : report["probes"]) {
    printf("  %s  %-5s %-3s %-28s %-22s %s\n",
           r["ok"].get<bool>() ? "PASS" : "FAIL",
           r["expect"].get<std::string>().c_str(),
           r["proto"].get<std::string>().c_str(),
           r["destination"].get<std::string>().c_str(),
           r["result"].get<std::string>().c_str(),
           r["why"].get<std::string>().c_str());
  }
  if (report["problems"].empty()) {
    printf("Enforcement is effective: %zu probes got the policy's verdict.\n",
           report["probes"].size());
    return;
  }
  printf("NOT IN FORCE as configured:\n");
  for (const json& p : report["problems"]) {
    printf("  - %s\n", p.get<std::string>().c_str());
  }
}

}  // namespace

absl::StatusOr<int> RunVerify(const ParsedCommand& command) {
  EGRESS_ASSIGN_OR_RETURN(Subject s, LoadSubject(command));
  std::vector<std::string> problems = StateProblems(s);
  json results = json::array();
  // In audit mode every probe would get through, telling nothing the mode
  // does not, and the kernel would record it as the target's own traffic:
  // `suggest` would then propose the probes' destinations (the "other
  // resolver" among them) as what the workload needs.
  const bool audit = s.info.mode == policy::Mode::kAudit;
  if (!audit && !s.cgroup.empty() && s.info.cgroup_exists) {
    const std::vector<Probe> probes = PlanProbes(s.rules);
    EGRESS_ASSIGN_OR_RETURN(
        std::vector<int> errs,
        ProbeFromCgroup(
            s.cgroup == "/" ? s.cgroup_root : s.cgroup_root + s.cgroup, probes,
            s.info.source == policy::TargetSource::kUser
                ? std::optional<uint32_t>(s.info.uid)
                : std::nullopt,
            IsContainer(s.info)));
    for (size_t i = 0; i < probes.size() && i < errs.size(); ++i) {
      results.push_back(
          ProbeResult(probes[i], errs[i], IsContainer(s.info), &problems));
    }
  }
  const json report = {{"target", s.info.name},
                       {"mode", policy::ModeName(s.info.mode)},
                       {"cgroup", s.cgroup},
                       {"hooks_attached", s.info.hooks_attached},
                       {"hooks_total", s.info.hooks_total},
                       {"probes", results},
                       {"problems", problems},
                       {"effective", problems.empty()}};
  if (command.output == OutputFormat::kJson) {
    printf("%s\n", policy::JsonText(report, 2).c_str());
  } else {
    PrintText(s, report);
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace egress::cli
