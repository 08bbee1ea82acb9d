#include "tests/testing/dockerd.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/runtime_cleanup.h"
#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr const char* kDockerd = "/usr/sbin/dockerd";
constexpr const char* kDocker = "/usr/bin/docker";  // docker.io's, not PATH's
constexpr const char* kBusybox = "/bin/busybox";
// The applets the test images use.
constexpr const char* kApplets[] = {"sh", "nc", "sleep", "cat", "echo", "true"};

}  // namespace

absl::StatusOr<std::unique_ptr<Dockerd>> Dockerd::Start() {
  for (const char* bin : {kDockerd, kDocker, kBusybox}) {
    if (access(bin, X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(
          bin,
          " is missing: scripts/install_deps.sh installs docker.io and "
          "busybox-static"));
    }
  }
  auto d = std::unique_ptr<Dockerd>(new Dockerd());
  char tmpl[] = "/tmp/egress-dockerd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return absl::InternalError("mkdtemp for dockerd failed");
  }
  d->dir_ = tmpl;
  const std::string tag = d->dir_.substr(sizeof("/tmp/egress-dockerd-") - 1);
  d->socket_ = d->dir_ + "/docker.sock";
  d->log_ = d->dir_ + "/dockerd.log";
  d->cgroup_parent_ = absl::StrCat("/egress-test-docker-", tag);
  // Made now, in every hierarchy, so that egressd can watch it as the
  // containers' parent before the first container starts.
  for (const std::string& root : CgroupMounts()) {
    mkdir((root + d->cgroup_parent_).c_str(), 0755);
  }
  for (const char* sub : {"/data", "/exec", "/cli"}) {
    mkdir((d->dir_ + sub).c_str(), 0700);
  }
  std::ofstream(d->dir_ + "/daemon.json") << "{}\n";
  std::vector<std::string> args = {
      kDockerd, "--config-file", d->dir_ + "/daemon.json", "--data-root",
      d->dir_ + "/data", "--exec-root", d->dir_ + "/exec", "--pidfile",
      d->dir_ + "/dockerd.pid", "-H", "unix://" + d->socket_,
      // No network of its own: containers use the host's or none.
      "--bridge=none", "--iptables=false", "--ip6tables=false",
      "--ip-forward=false", "--ip-masq=false", "--storage-driver=vfs",
      "--cgroup-parent", d->cgroup_parent_, "--containerd-namespace",
      "egress-test-" + tag, "--containerd-plugins-namespace",
      "egress-test-plugins-" + tag, "--log-level=warn"};
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setpgid(0, 0);
    int fd = open(d->log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kDockerd, argv.data());
    _exit(127);
  }
  d->pid_ = pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto v = d->Docker({"version", "--format", "{{.Server.Version}}"},
                       absl::Seconds(5));
    if (v.ok() && v->exit_code == 0) return d;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      d->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("dockerd exited at start: ", d->Log()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("dockerd did not answer within 30 s: ", d->Log()));
}

Dockerd::~Dockerd() { Stop(); }

void Dockerd::Stop() {
  if (pid_ > 0) {
    RemoveAllContainers().IgnoreError();
    // Images go with the data root; dockerd stops its containerd.
    kill(pid_, SIGTERM);
    if (!WaitPidUntil(pid_, absl::Now() + absl::Seconds(15)).ok()) {
      kill(-pid_, SIGKILL);
      WaitPidUntil(pid_, absl::Now() + absl::Seconds(5)).IgnoreError();
    }
    // Its containerd and shims are in its process group.
    kill(-pid_, SIGKILL);
    pid_ = -1;
  }
  if (!dir_.empty()) {
    for (const std::string& m : MountsBelow(dir_)) {
      umount2(m.c_str(), MNT_DETACH);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
  if (!cgroup_parent_.empty()) {
    for (const std::string& root : CgroupMounts()) {
      RemoveCgroupTree(root + cgroup_parent_);
    }
    cgroup_parent_.clear();
  }
}

absl::StatusOr<CommandResult> Dockerd::Docker(
    const std::vector<std::string>& args, absl::Duration timeout) const {
  // The CLI's config (and its ~/.docker) stays in our directory.
  std::vector<std::string> argv = {"env", "DOCKER_CONFIG=" + dir_ + "/cli",
                                   kDocker, "-H", "unix://" + socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

absl::StatusOr<std::string> Dockerd::DockerOk(
    const std::vector<std::string>& args, absl::Duration timeout) const {
  EGRESS_ASSIGN_OR_RETURN(CommandResult r, Docker(args, timeout));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("docker ", absl::StrJoin(args, " "),
                                            ": exit ", r.exit_code, ": ",
                                            r.output));
  }
  return std::string(absl::StripAsciiWhitespace(r.output));
}

absl::Status Dockerd::ImportBusybox(const std::string& name) {
  const std::string rootfs = dir_ + "/rootfs-" + std::to_string(getpid());
  std::error_code ec;
  std::filesystem::create_directories(rootfs + "/bin", ec);
  std::filesystem::create_directories(rootfs + "/tmp", ec);
  std::filesystem::copy_file(kBusybox, rootfs + "/bin/busybox",
                             std::filesystem::copy_options::overwrite_existing,
                             ec);
  if (ec) return absl::InternalError("copying busybox: " + ec.message());
  for (const char* applet : kApplets) {
    std::filesystem::create_symlink("busybox", rootfs + "/bin/" + applet, ec);
  }
  const std::string tar = dir_ + "/rootfs.tar";
  EGRESS_RETURN_IF_ERROR(
      RunCommandOk({"tar", "-C", rootfs, "-cf", tar, "."}).status());
  EGRESS_RETURN_IF_ERROR(DockerOk({"import", tar, name}).status());
  std::filesystem::remove_all(rootfs, ec);
  std::filesystem::remove(tar, ec);
  return absl::OkStatus();
}

absl::Status Dockerd::RemoveAllContainers() const {
  EGRESS_ASSIGN_OR_RETURN(std::string ids, DockerOk({"ps", "-aq"}));
  std::vector<std::string> argv = {"rm", "-f"};
  for (absl::string_view id : absl::StrSplit(ids, '\n', absl::SkipEmpty())) {
    argv.emplace_back(absl::StripAsciiWhitespace(id));
  }
  if (argv.size() == 2) return absl::OkStatus();
  return DockerOk(argv, absl::Seconds(60)).status();
}

std::string Dockerd::Log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

}  // namespace egress::testing
