#include "tests/testing/podman.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr const char* kPodman = "/usr/bin/podman";
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
  EGRESS_RETURN_IF_ERROR(CheckInstalled({kPodman}, "podman"));
  auto p = std::unique_ptr<Podman>(new Podman());
  EGRESS_RETURN_IF_ERROR(p->MakeHome("podman").status());
  const std::string& d = p->dir_;
  p->name_ = "podman system service";
  p->cli_name_ = "podman";
  // The remote client: everything goes through the service (and its events).
  p->cli_ = {"env", "CONTAINERS_CONF=" + d + "/containers.conf", kPodman,
             "--url", "unix://" + p->socket_};
  p->rm_args_ = {"rm", "-f", "-t", "0"};
  // Below the parent, from the local image only.
  p->run_flags_ = {"--pull", "never", "--cgroup-parent", p->cgroup_parent_};
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
  DaemonSpec spec;
  spec.argv = {kPodman,
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
  spec.env = {{"CONTAINERS_CONF", d + "/containers.conf"},
              {"CONTAINERS_STORAGE_CONF", d + "/storage.conf"}};
  spec.limits = {{RLIMIT_NOFILE, nofile}, {RLIMIT_NPROC, nproc}};
  EGRESS_RETURN_IF_ERROR(p->Serve(std::move(spec)));
  return p;
}

}  // namespace egress::testing
