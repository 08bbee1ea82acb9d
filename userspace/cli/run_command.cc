#include "userspace/cli/run_command.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "userspace/cli/daemon_call.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/status_macros.h"
#include "userspace/kernel/cgroup.h"

namespace egress::cli {
namespace {

volatile sig_atomic_t g_child = 0;

void Forward(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

// Kills what the command left behind in its cgroup and removes the cgroup.
void RemoveCgroup(const std::string& abs) {
  std::ofstream(abs + "/cgroup.kill") << "1";
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

}  // namespace

absl::StatusOr<int> RunUnderPolicy(ParsedCommand command) {
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
      CallEgressd(command.socket_path, *command.request, absl::Seconds(60))
          .status();
  if (!st.ok()) {
    RemoveCgroup(abs);
    return st;
  }

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    RemoveTarget(command.socket_path, name).IgnoreError();
    RemoveCgroup(abs);
    return ErrnoStatus(err, "fork");
  }
  if (pid == 0) {
    // Join the enforced cgroup before exec: every socket the command opens
    // is created inside it.
    if (absl::Status m = MoveToCgroup(abs, getpid()); !m.ok()) {
      fprintf(stderr, "egressctl run: %s\n", m.ToString().c_str());
      _exit(127);
    }
    std::vector<char*> argv;
    for (std::string& a : command.run_argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    fprintf(stderr, "egressctl run: cannot run '%s': %s\n", argv[0],
            strerror(errno));
    _exit(127);
  }
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  int code =
      WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

  absl::Status rm = RemoveTarget(command.socket_path, name);
  RemoveCgroup(abs);
  if (!rm.ok()) {
    fprintf(stderr, "egressctl run: removing target %s: %s\n", name.c_str(),
            rm.ToString().c_str());
  }
  return code;
}

}  // namespace egress::cli
