#include "tests/testing/containerd.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/command.h"
#include "tests/testing/file_util.h"
#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr char kContainerd[] = "/usr/bin/containerd";
constexpr char kCtr[] = "/usr/bin/ctr";
constexpr char kBusybox[] = "/bin/busybox";

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return out.good() ? absl::OkStatus()
                    : absl::InternalError(absl::StrCat("cannot write ", path));
}

std::string LogOf(const std::string& path) {
  return ReadFile(path).value_or("(no log)");
}

// "sha256:HEX" of a file, and its size.
absl::StatusOr<std::pair<std::string, uint64_t>> Digest(
    const std::string& path) {
  EGRESS_ASSIGN_OR_RETURN(std::string out, RunCommandOk({"sha256sum", path}));
  return std::make_pair(absl::StrCat("sha256:", out.substr(0, 64)),
                        std::filesystem::file_size(path));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Containerd>> Containerd::Start() {
  if (access(kContainerd, X_OK) != 0 || access(kCtr, X_OK) != 0) {
    return absl::NotFoundError(
        "containerd or ctr is missing: install containerd "
        "(scripts/install_deps.sh)");
  }
  std::unique_ptr<Containerd> c(new Containerd());
  char tmpl[] = "/tmp/egress-containerd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  c->dir_ = tmpl;
  c->socket_ = c->dir_ + "/containerd.sock";
  const std::string config =
      absl::StrCat("version = 2\n", "root = \"", c->dir_, "/root\"\n",
                   "state = \"", c->dir_, "/state\"\n",
                   // No CRI (it would set up pod networking) and no
                   // snapshotters this machine may lack.
                   "disabled_plugins = [\"io.containerd.grpc.v1.cri\", "
                   "\"io.containerd.snapshotter.v1.btrfs\", "
                   "\"io.containerd.snapshotter.v1.zfs\", "
                   "\"io.containerd.snapshotter.v1.devmapper\", "
                   "\"io.containerd.snapshotter.v1.aufs\"]\n",
                   "[grpc]\n  address = \"", c->socket_, "\"\n",
                   "[ttrpc]\n  address = \"", c->socket_, ".ttrpc\"\n",
                   "[debug]\n  address = \"", c->dir_, "/debug.sock\"\n");
  if (absl::Status st = WriteText(c->dir_ + "/config.toml", config); !st.ok())
    return st;
  const std::string log = c->dir_ + "/containerd.log";
  DaemonSpec spec;
  spec.argv = {kContainerd, "--config", c->dir_ + "/config.toml"};
  spec.log_path = log;
  EGRESS_ASSIGN_OR_RETURN(c->pid_, SpawnDaemon(spec));
  EGRESS_RETURN_IF_ERROR(WaitUntilServing(
      &c->pid_, "containerd", absl::Seconds(20), absl::Milliseconds(100),
      [&c] {
        if (access(c->socket_.c_str(), F_OK) != 0) return false;
        auto v = RunCommand({kCtr, "--address", c->socket_, "version"});
        return v.ok() && v->exit_code == 0;
      },
      [&log] { return LogOf(log); }));
  return c;
}

absl::StatusOr<std::string> Containerd::Ctr(
    const std::string& ns, const std::vector<std::string>& args) {
  namespaces_.insert(ns);
  std::vector<std::string> argv = {kCtr, "--address", socket_, "-n", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommandOk(argv, absl::Seconds(60));
}

absl::Status Containerd::ImportBusyboxImage(const std::string& ns,
                                            const std::string& ref) {
  const std::string work = dir_ + "/image-" + std::to_string(rand());
  const std::string rootfs = work + "/rootfs";
  const std::string layout = work + "/layout";
  std::filesystem::create_directories(rootfs + "/bin");
  std::filesystem::create_directories(layout + "/blobs/sha256");
  std::filesystem::copy_file(kBusybox, rootfs + "/bin/busybox");
  std::filesystem::create_symlink("busybox", rootfs + "/bin/sh");
  // The layer: the rootfs as an uncompressed tar.
  const std::string layer = work + "/layer.tar";
  EGRESS_RETURN_IF_ERROR(
      RunCommandOk({"tar", "-C", rootfs, "-cf", layer, "."}).status());
  EGRESS_ASSIGN_OR_RETURN(auto layer_digest, Digest(layer));
  const std::string config_json = absl::StrCat(
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"",
      layer_digest.first, "\"]}}");
  const std::string config = work + "/config.json";
  EGRESS_RETURN_IF_ERROR(WriteText(config, config_json));
  EGRESS_ASSIGN_OR_RETURN(auto config_digest, Digest(config));
  const std::string manifest_json = absl::StrCat(
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
      "\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
      "\"digest\":\"",
      config_digest.first, "\",\"size\":", config_digest.second,
      "},\"layers\":[{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"",
      layer_digest.first, "\",\"size\":", layer_digest.second, "}]}");
  const std::string manifest = work + "/manifest.json";
  EGRESS_RETURN_IF_ERROR(WriteText(manifest, manifest_json));
  EGRESS_ASSIGN_OR_RETURN(auto manifest_digest, Digest(manifest));
  for (const auto& [path, digest] :
       {std::make_pair(layer, layer_digest.first),
        std::make_pair(config, config_digest.first),
        std::make_pair(manifest, manifest_digest.first)}) {
    std::filesystem::rename(
        path, layout + "/blobs/sha256/" +
                  std::string(absl::StripPrefix(digest, "sha256:")));
  }
  EGRESS_RETURN_IF_ERROR(WriteText(
      layout + "/index.json",
      absl::StrCat(
          "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
          "\"application/vnd.oci.image.manifest.v1+json\","
          "\"digest\":\"",
          manifest_digest.first, "\",\"size\":", manifest_digest.second,
          ",\"annotations\":{\"io.containerd.image.name\":\"", ref,
          "\",\"org.opencontainers.image.ref.name\":\"", ref, "\"}}]}")));
  EGRESS_RETURN_IF_ERROR(
      WriteText(layout + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  const std::string archive = work + "/image.tar";
  EGRESS_RETURN_IF_ERROR(
      RunCommandOk({"tar", "-C", layout, "-cf", archive, "."}).status());
  EGRESS_RETURN_IF_ERROR(Ctr(ns, {"image", "import", archive}).status());
  std::filesystem::remove_all(work);
  return absl::OkStatus();
}

absl::StatusOr<pid_t> Containerd::Run(
    const std::string& ns, const std::string& id, const std::string& image,
    const std::map<std::string, std::string>& labels,
    const std::vector<std::string>& command, const std::string& cgroup) {
  // runc keeps its state under /run/containerd/runc/<namespace> unless
  // told otherwise: this containerd's own directory keeps two test runs on
  // one machine from meeting over a container id.
  std::vector<std::string> args = {"run", "-d", "--net-host", "--runc-root",
                                   dir_ + "/runc"};
  if (!cgroup.empty()) args.insert(args.end(), {"--cgroup", cgroup});
  for (const auto& [k, v] : labels) {
    args.push_back("--label");
    args.push_back(absl::StrCat(k, "=", v));
  }
  args.push_back(image);
  args.push_back(id);
  args.insert(args.end(), command.begin(), command.end());
  EGRESS_RETURN_IF_ERROR(Ctr(ns, args).status());
  running_.insert({ns, id});
  EGRESS_ASSIGN_OR_RETURN(std::string tasks, Ctr(ns, {"task", "ls"}));
  for (absl::string_view line : absl::StrSplit(tasks, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int pid = 0;
    if (f.size() >= 2 && f[0] == id && absl::SimpleAtoi(f[1], &pid)) {
      return pid;
    }
  }
  return absl::InternalError(absl::StrCat("no task of ", id, ": ", tasks));
}

absl::Status Containerd::Remove(const std::string& ns, const std::string& id) {
  (void)Ctr(ns, {"task", "kill", "-s", "SIGKILL", id});
  // The task is gone once its process is reaped by the shim: bounded.
  for (int i = 0; i < 50; ++i) {
    if (Ctr(ns, {"task", "rm", "-f", id}).ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  running_.erase({ns, id});
  return Ctr(ns, {"container", "rm", id}).status();
}

Containerd::~Containerd() {
  for (auto [ns, id] :
       std::set<std::pair<std::string, std::string>>(running_)) {
    (void)Remove(ns, id);
  }
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    if (!WaitPidUntil(pid_, absl::Now() + absl::Seconds(10)).ok()) {
      kill(pid_, SIGKILL);
      (void)WaitPidUntil(pid_, absl::Now() + absl::Seconds(5));
    }
  }
  // Snapshot and task mounts containerd left under its directory.
  for (int round = 0; round < 3; ++round) {
    std::ifstream mounts("/proc/self/mounts");
    std::string dev, point, rest;
    std::vector<std::string> under;
    while (mounts >> dev >> point && std::getline(mounts, rest)) {
      if (absl::StartsWith(point, dir_)) under.push_back(point);
    }
    for (auto it = under.rbegin(); it != under.rend(); ++it) {
      umount2(it->c_str(), MNT_DETACH);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  // runc leaves each namespace's parent cgroup ("/k8s.io") behind, empty.
  for (const std::string& ns : namespaces_) {
    for (const auto& entry :
         std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      rmdir((entry.path().string() + "/" + ns).c_str());
    }
  }
}

}  // namespace egress::testing
