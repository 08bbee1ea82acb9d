#include "tests/testing/dockerd.h"

#include <sys/stat.h>

#include <fstream>

#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr const char* kDockerd = "/usr/sbin/dockerd";
constexpr const char* kDocker = "/usr/bin/docker";  // docker.io's, not PATH's

}  // namespace

absl::StatusOr<std::unique_ptr<Dockerd>> Dockerd::Start() {
  EGRESS_RETURN_IF_ERROR(CheckInstalled({kDockerd, kDocker}, "docker.io"));
  auto d = std::unique_ptr<Dockerd>(new Dockerd());
  EGRESS_ASSIGN_OR_RETURN(const std::string tag, d->MakeHome("docker"));
  const std::string& dir = d->dir_;
  d->name_ = "dockerd";
  d->cli_name_ = "docker";
  // The CLI's config (and its ~/.docker) stays in our directory.
  d->cli_ = {"env", "DOCKER_CONFIG=" + dir + "/cli", kDocker, "-H",
             "unix://" + d->socket_};
  d->rm_args_ = {"rm", "-f"};
  for (const char* sub : {"/data", "/exec", "/cli"}) {
    mkdir((dir + sub).c_str(), 0700);
  }
  std::ofstream(dir + "/daemon.json") << "{}\n";
  DaemonSpec spec;
  spec.argv = {kDockerd, "--config-file", dir + "/daemon.json", "--data-root",
               dir + "/data", "--exec-root", dir + "/exec", "--pidfile",
               dir + "/dockerd.pid", "-H", "unix://" + d->socket_,
               // No network of its own: containers use the host's or none.
               "--bridge=none", "--iptables=false", "--ip6tables=false",
               "--ip-forward=false", "--ip-masq=false", "--storage-driver=vfs",
               "--cgroup-parent", d->cgroup_parent_, "--containerd-namespace",
               "egress-test-" + tag, "--containerd-plugins-namespace",
               "egress-test-plugins-" + tag, "--log-level=warn"};
  EGRESS_RETURN_IF_ERROR(d->Serve(std::move(spec)));
  return d;
}

}  // namespace egress::testing
