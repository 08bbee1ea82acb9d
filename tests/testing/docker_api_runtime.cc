#include "tests/testing/docker_api_runtime.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

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

constexpr const char* kBusybox = "/bin/busybox";
// The applets the test images use.
constexpr const char* kApplets[] = {"sh", "nc", "sleep", "cat", "echo", "true"};

}  // namespace

absl::Status DockerApiRuntime::CheckInstalled(
    const std::vector<std::string>& binaries, const std::string& package) {
  std::vector<std::string> all = binaries;
  all.push_back(kBusybox);
  for (const std::string& bin : all) {
    if (access(bin.c_str(), X_OK) != 0) {
      return absl::NotFoundError(
          absl::StrCat(bin, " is missing: scripts/install_deps.sh installs ",
                       package, " and busybox-static"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DockerApiRuntime::MakeHome(
    const std::string& kind) {
  const std::string prefix = absl::StrCat("/tmp/egress-", kind, "-");
  std::string tmpl = prefix + "XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp for ", kind, " failed"));
  }
  dir_ = tmpl;
  const std::string tag = dir_.substr(prefix.size());
  socket_ = absl::StrCat(dir_, "/", kind, ".sock");
  log_ = absl::StrCat(dir_, "/", kind, ".log");
  cgroup_parent_ = absl::StrCat("/egress-test-", kind, "-", tag);
  // Made now, in every hierarchy, so that egressd can watch it as the
  // containers' parent before the first container starts.
  for (const std::string& root : CgroupMounts()) {
    mkdir((root + cgroup_parent_).c_str(), 0755);
  }
  return tag;
}

absl::Status DockerApiRuntime::Serve(DaemonSpec spec) {
  spec.log_path = log_;
  spec.death_signal = SIGTERM;
  // Its helpers (dockerd's containerd and shims) go with its group.
  spec.own_process_group = true;
  EGRESS_ASSIGN_OR_RETURN(pid_, SpawnDaemon(spec));
  return WaitUntilServing(
      &pid_, name_, absl::Seconds(30), absl::Milliseconds(100),
      [this] {
        auto v = Cli({"version", "--format", "{{.Server.Version}}"},
                     absl::Seconds(5));
        return v.ok() && v->exit_code == 0;
      },
      [this] { return Log(); });
}

DockerApiRuntime::~DockerApiRuntime() { Stop(); }

void DockerApiRuntime::Stop() {
  if (pid_ > 0) {
    RemoveAllContainers().IgnoreError();
    // Images go with the data root.
    kill(pid_, SIGTERM);
    if (!WaitPidUntil(pid_, absl::Now() + absl::Seconds(15)).ok()) {
      kill(-pid_, SIGKILL);
      WaitPidUntil(pid_, absl::Now() + absl::Seconds(5)).IgnoreError();
    }
    // What it started in its process group (dockerd's containerd, shims).
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
    // What left the service's process group and lingers below the parent
    // (Podman's conmon, one per container and exec session): ended here,
    // bounded.
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

absl::StatusOr<CommandResult> DockerApiRuntime::Cli(
    const std::vector<std::string>& args, absl::Duration timeout) const {
  std::vector<std::string> argv = cli_;
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

absl::StatusOr<std::string> DockerApiRuntime::CliOk(
    const std::vector<std::string>& args, absl::Duration timeout) const {
  EGRESS_ASSIGN_OR_RETURN(CommandResult r, Cli(args, timeout));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat(cli_name_, " ",
                                            absl::StrJoin(args, " "), ": exit ",
                                            r.exit_code, ": ", r.output));
  }
  return std::string(absl::StripAsciiWhitespace(r.output));
}

absl::Status DockerApiRuntime::ImportBusybox(const std::string& name) {
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
  EGRESS_RETURN_IF_ERROR(CliOk({"import", tar, name}).status());
  std::filesystem::remove_all(rootfs, ec);
  std::filesystem::remove(tar, ec);
  return absl::OkStatus();
}

absl::Status DockerApiRuntime::RemoveAllContainers() const {
  EGRESS_ASSIGN_OR_RETURN(std::string ids, CliOk({"ps", "-aq"}));
  std::vector<std::string> argv = rm_args_;
  for (absl::string_view id : absl::StrSplit(ids, '\n', absl::SkipEmpty())) {
    argv.emplace_back(absl::StripAsciiWhitespace(id));
  }
  if (argv.size() == rm_args_.size()) return absl::OkStatus();
  return CliOk(argv, absl::Seconds(60)).status();
}

std::string DockerApiRuntime::Log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

}  // namespace egress::testing
