#include "userspace/cli/verify_command.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "userspace/cli/verify_plan.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

using nlohmann::json;

absl::StatusOr<json> Call(const std::string& socket, const json& request) {
  EGRESS_ASSIGN_OR_RETURN(json r,
                          CallDaemon(socket, request, absl::Seconds(30)));
  EGRESS_RETURN_IF_ERROR(ResponseStatus(r));
  return r;
}

// One connect() from this process: the errno (0 = connected or still
// connecting after the wait: not blocked by egress either way).
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

// Runs every probe in a child that joins `cgroup_abs`; the errnos in order.
absl::StatusOr<std::vector<int>> ProbeFromCgroup(
    const std::string& cgroup_abs, const std::vector<Probe>& probes) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    close(fds[0]);
    std::ofstream procs(cgroup_abs + "/cgroup.procs");
    procs << "0" << std::flush;
    if (!procs) _exit(3);
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
                                                      : ""));
  }
  return out;
}

}  // namespace

absl::StatusOr<int> RunVerify(const ParsedCommand& command) {
  const std::string& socket = command.socket_path;
  const std::string name = command.request.value("target", std::string());
  EGRESS_ASSIGN_OR_RETURN(json status, Call(socket, {{"cmd", "status"}}));
  EGRESS_ASSIGN_OR_RETURN(json list,
                          Call(socket, {{"cmd", "list"}, {"target", name}}));
  if (list["targets"].size() != 1) {
    return absl::InvalidArgumentError("name the target with --target NAME");
  }
  const json& listed = list["targets"][0];
  const std::string target = listed["target"];
  json t;
  for (const json& s : status["targets"]) {
    if (s["name"] == target) t = s;
  }
  if (t.is_null()) return absl::NotFoundError("target vanished");
  std::vector<policy::Rule> rules;
  for (const json& r : listed["rules"]) {
    json copy = r;
    copy.erase("number");
    copy.erase("text");
    EGRESS_ASSIGN_OR_RETURN(policy::Rule rule, policy::RuleFromJson(copy));
    rules.push_back(rule);
  }
  std::string cgroup = t["cgroup"];
  if (t.value("pattern", false)) {
    cgroup = t["cgroups"].empty() ? "" : t["cgroups"][0]["path"];
  }
  json report = {{"target", target},
                 {"mode", t["mode"]},
                 {"cgroup", cgroup},
                 {"hooks_attached", t["hooks_attached"]},
                 {"hooks_total", t["hooks_total"]}};
  std::vector<std::string> problems;
  if (!t["cgroup_exists"].get<bool>() || cgroup.empty()) {
    problems.push_back("its cgroup does not exist: nothing to enforce on");
  } else if (!t["attached"].get<bool>()) {
    problems.push_back(absl::StrCat("only ", t["hooks_attached"].dump(), " of ",
                                    t["hooks_total"].dump(),
                                    " hooks are attached to its cgroup"));
  }
  if (t["mode"] == "audit") {
    problems.push_back("audit mode: nothing is blocked, only recorded");
  }
  json results = json::array();
  if (!cgroup.empty() && t["cgroup_exists"].get<bool>()) {
    std::vector<Probe> probes = PlanProbes(rules);
    EGRESS_ASSIGN_OR_RETURN(
        std::vector<int> errs,
        ProbeFromCgroup(status["cgroup_root"].get<std::string>() + cgroup,
                        probes));
    for (size_t i = 0; i < probes.size() && i < errs.size(); ++i) {
      const Probe& p = probes[i];
      // No IPv6 (or no such socket kind) on this host: nothing to learn.
      const bool skipped =
          errs[i] == EAFNOSUPPORT || errs[i] == EPROTONOSUPPORT;
      const bool blocked = errs[i] == EPERM;
      const bool ok = skipped || p.expect_allowed != blocked;
      std::string dest = p.address.find(':') != std::string::npos
                             ? absl::StrCat("[", p.address, "]:", p.port)
                             : absl::StrCat(p.address, ":", p.port);
      results.push_back(
          {{"ok", ok},
           {"expect", p.expect_allowed ? "allow" : "deny"},
           {"proto", policy::ProtoName(p.proto)},
           {"destination", dest},
           {"result",
            skipped   ? absl::StrCat("skipped (", strerror(errs[i]), ")")
            : blocked ? std::string("blocked (EPERM)")
            : errs[i] == 0
                ? std::string("not blocked")
                : absl::StrCat("not blocked (", strerror(errs[i]), ")")},
           {"why", p.why}});
      if (!ok) {
        problems.push_back(
            p.expect_allowed
                ? absl::StrCat(dest, "/", policy::ProtoName(p.proto),
                               " is allowed by the policy but blocked")
                : absl::StrCat(dest, "/", policy::ProtoName(p.proto),
                               " should be denied but got through egress"));
      }
    }
  }
  report["probes"] = results;
  report["problems"] = problems;
  report["effective"] = problems.empty();
  if (command.output == OutputFormat::kJson) {
    printf("%s\n", report.dump(2).c_str());
  } else {
    printf("Target %s (%s), cgroup %s: %s/%s hooks attached\n", target.c_str(),
           t["mode"].get<std::string>().c_str(),
           cgroup.empty() ? "(none)" : cgroup.c_str(),
           t["hooks_attached"].dump().c_str(), t["hooks_total"].dump().c_str());
    for (const json& r : results) {
      printf("  %s  %-5s %-3s %-28s %-22s %s\n",
             r["ok"].get<bool>() ? "PASS" : "FAIL",
             r["expect"].get<std::string>().c_str(),
             r["proto"].get<std::string>().c_str(),
             r["destination"].get<std::string>().c_str(),
             r["result"].get<std::string>().c_str(),
             r["why"].get<std::string>().c_str());
    }
    if (problems.empty()) {
      printf("Enforcement is effective: %zu probes got the policy's verdict.\n",
             results.size());
    } else {
      printf("NOT IN FORCE as configured:\n");
      for (const std::string& p : problems) printf("  - %s\n", p.c_str());
    }
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace egress::cli
