#include "tests/testing/podman.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/runtime_cleanup.h"
#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr const char* kPodman = "/usr/bin/podman";
constexpr const char* kBusybox = "/bin/busybox";
// The applets the test images use.
constexpr const char* kApplets[] = {"sh", "nc", "sleep", "cat", "echo", "true"};
// The service and its containers get these limits (or the lower hard ones
// the test has): Podman's default for a rootful container (1048576 open
// files and processes) needs CAP_SYS_RESOURCE, which a test in a container
// may lack, and runc would fail to set it.
constexpr rlim_t kMaxLimit = 4096;

rlim_t LoweredLimit(int resource) {
  rlimit r{};
  if (getrlimit(resource, &r) != 0) return kMaxLimit;
  return std::min<rlim_t>(r.rlim_max, kMaxLimit);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Podman>> Podman::Start() {
  for (const char* bin : {kPodman, kBusybox}) {
    if (access(bin, X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(
          bin,
          " is missing: scripts/install_deps.sh installs podman and "
          "busybox-static"));
    }
  }
  auto p = std::unique_ptr<Podman>(new Podman());
  char tmpl[] = "/tmp/egress-podman-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return absl::InternalError("mkdtemp for podman failed");
  }
  p->dir_ = tmpl;
  const std::string& d = p->dir_;
  const std::string tag = d.substr(sizeof("/tmp/egress-podman-") - 1);
  p->socket_ = d + "/podman.sock";
  p->log_ = d + "/podman.log";
  p->cgroup_parent_ = absl::StrCat("/egress-test-podman-", tag);
  // Made now, in every hierarchy, so that egressd can watch it as the
  // containers' parent before the first container starts.
  for (const std::string& root : CgroupMounts()) {
    mkdir((root + p->cgroup_parent_).c_str(), 0755);
  }
  for (const char* sub : {"/root", "/runroot", "/tmp", "/net"}) {
    mkdir((d + sub).c_str(), 0700);
  }
  const rlim_t nofile = LoweredLimit(RLIMIT_NOFILE);
  const rlim_t nproc = LoweredLimit(RLIMIT_NPROC);
  std::ofstream(d + "/storage.conf")
      << "[storage]\ndriver = \"vfs\"\ngraphroot = \"" << d
      << "/root\"\nrunroot = \"" << d << "/runroot\"\n";
  std::ofstream(d + "/containers.conf")
      << "[containers]\nnetns = \"host\"\ndefault_ulimits = [\"nofile="
      << nofile << ":" << nofile << "\", \"nproc=" << nproc << ":" << nproc
      << "\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = "
         "\"file\"\nevents_logfile_path = \""
      << d << "/events.log\"\ntmp_dir = \"" << d << "/tmp\"\nstatic_dir = \""
      << d << "/root/libpod\"\nvolume_path = \"" << d
      << "/root/volumes\"\n[network]\nnetwork_config_dir = \"" << d
      << "/net\"\n";
  std::vector<std::string> args = {kPodman,
                                   "--root",
                                   d + "/root",
                                   "--runroot",
                                   d + "/runroot",
                                   "--tmpdir",
                                   d + "/tmp",
                                   "--storage-driver=vfs",
                                   "--cgroup-manager=cgroupfs",
                                   "--events-backend=file",
                                   "--log-level=warn",
                                   "system",
                                   "service",
                                   "--time=0",
                                   "unix://" + p->socket_};
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setpgid(0, 0);
    const rlimit files{nofile, nofile}, procs{nproc, nproc};
    setrlimit(RLIMIT_NOFILE, &files);
    setrlimit(RLIMIT_NPROC, &procs);
    setenv("CONTAINERS_CONF", (d + "/containers.conf").c_str(), 1);
    setenv("CONTAINERS_STORAGE_CONF", (d + "/storage.conf").c_str(), 1);
    int fd = open(p->log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kPodman, argv.data());
    _exit(127);
  }
  p->pid_ = pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto v = p->Run({"version", "--format", "{{.Server.Version}}"},
                    absl::Seconds(5));
    if (v.ok() && v->exit_code == 0) return p;
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("podman system service exited at start: ", p->Log()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "podman system service did not answer within 30 s: ", p->Log()));
}

Podman::~Podman() { Stop(); }

void Podman::Stop() {
  if (pid_ > 0) {
    RemoveAllContainers().IgnoreError();
    kill(pid_, SIGTERM);
    if (!WaitPidUntil(pid_, absl::Now() + absl::Seconds(15)).ok()) {
      kill(-pid_, SIGKILL);
      WaitPidUntil(pid_, absl::Now() + absl::Seconds(5)).IgnoreError();
    }
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
    // conmon (one per container and exec session) leaves the service's
    // process group and lingers below the parent: ended here, bounded.
    for (int tries = 0; tries < 50; ++tries) {
      int left = 0;
      for (const std::string& root : CgroupMounts()) {
        left += KillCgroupTree(root + cgroup_parent_);
      }
      if (left == 0) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    for (const std::string& root : CgroupMounts()) {
      RemoveCgroupTree(root + cgroup_parent_);
    }
    cgroup_parent_.clear();
  }
}

absl::StatusOr<CommandResult> Podman::Run(const std::vector<std::string>& args,
                                          absl::Duration timeout) const {
  // The remote client: everything goes through the service (and its events).
  std::vector<std::string> argv = {
      "env", "CONTAINERS_CONF=" + dir_ + "/containers.conf", kPodman, "--url",
      "unix://" + socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

absl::StatusOr<std::string> Podman::RunOk(const std::vector<std::string>& args,
                                          absl::Duration timeout) const {
  EGRESS_ASSIGN_OR_RETURN(CommandResult r, Run(args, timeout));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("podman ", absl::StrJoin(args, " "),
                                            ": exit ", r.exit_code, ": ",
                                            r.output));
  }
  return std::string(absl::StripAsciiWhitespace(r.output));
}

absl::Status Podman::ImportBusybox(const std::string& name) {
  const std::string rootfs = dir_ + "/rootfs";
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
  EGRESS_RETURN_IF_ERROR(RunOk({"import", tar, name}).status());
  std::filesystem::remove_all(rootfs, ec);
  std::filesystem::remove(tar, ec);
  return absl::OkStatus();
}

absl::Status Podman::RemoveAllContainers() const {
  EGRESS_ASSIGN_OR_RETURN(std::string ids, RunOk({"ps", "-aq"}));
  std::vector<std::string> argv = {"rm", "-f", "-t", "0"};
  for (absl::string_view id : absl::StrSplit(ids, '\n', absl::SkipEmpty())) {
    argv.emplace_back(absl::StripAsciiWhitespace(id));
  }
  if (argv.size() == 4) return absl::OkStatus();
  return RunOk(argv, absl::Seconds(60)).status();
}

std::string Podman::Log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

}  // namespace egress::testing
