// egress_workload_bench: containers as users run them, through a real dockerd
// (tests/testing/dockerd.h) and the built egressd and egressctl: the time
// from `docker run` to the first enforced decision
// (workload_first_decision.h), and many running containers put under
// enforcement at once (workload_fleet.h). Needs root, docker.io and
// busybox-static; run by hand (bench/README.md). Traffic goes to 127.0.0.1
// only; containers use the host network and numeric addresses. Containers,
// dockerds, egressd, cgroups and pins are removed on exit, error, SIGINT and
// SIGTERM.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/bench_ops.h"
#include "bench/egressd_process.h"
#include "bench/workload_first_decision.h"
#include "bench/workload_fleet.h"
#include "tests/testing/command.h"
#include "tests/testing/dockerd.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

using testing::Dockerd;

constexpr char kImage[] = "egress-bench-busybox:1";

struct Options {
  int runs = 20;
  int containers = 200;
};

absl::StatusOr<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    int* into = nullptr;
    if (absl::ConsumePrefix(&a, "--runs=")) into = &o.runs;
    if (absl::ConsumePrefix(&a, "--containers=")) into = &o.containers;
    if (into == nullptr || !absl::SimpleAtoi(a, into) || *into < 0 ||
        *into > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown or bad argument '", argv[i],
          "' (flags: --runs=N --containers=N, 0..1000; 0 skips a part)"));
    }
  }
  return o;
}

std::string LoadAverage() {
  return testing::RunCommandOk({"cat", "/proc/loadavg"}).value_or("?\n");
}

void PrintHeader() {
  auto date = testing::RunCommandOk({"date", "-u", "+%Y-%m-%d %H:%M UTC"});
  auto kernel = testing::RunCommandOk({"uname", "-r"});
  printf("egress_workload_bench: %s, kernel %s, %ld cpus, load average %s",
         std::string(absl::StripTrailingAsciiWhitespace(date.value_or("?")))
             .c_str(),
         std::string(absl::StripTrailingAsciiWhitespace(kernel.value_or("?")))
             .c_str(),
         sysconf(_SC_NPROCESSORS_ONLN), LoadAverage().c_str());
}

absl::Status Run(const Options& o) {
  char tmpl[] = "/tmp/egress-wbench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string dir = tmpl;
  absl::Cleanup rm_dir = [&] { (void)RemoveTree(dir); };
  PrintHeader();
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<Dockerd> docker, Dockerd::Start());
  EGRESS_RETURN_IF_ERROR(docker->ImportBusybox(kImage));
  // Declared after dockerd: destroyed (killed, pins removed) before it.
  EgressdProcess egressd(dir,
                         absl::StrCat("/sys/fs/bpf/egress-wbench-", getpid()),
                         {"--docker_socket", docker->socket(),
                          "--container_parent", docker->cgroup_parent()});
  EGRESS_RETURN_IF_ERROR(egressd.Start());
  printf("  %-52s %10.1f MiB\n", "egressd RSS at start", egressd.memory().rss);
  if (o.runs > 0) {
    EGRESS_RETURN_IF_ERROR(FirstDecisionPart(*docker, egressd, kImage, o.runs));
  }
  if (o.containers > 0) {
    EGRESS_RETURN_IF_ERROR(
        FleetPart(*docker, egressd, kImage, dir, o.containers));
  }
  printf("\nload average at the end %s", LoadAverage().c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) {
  return egress::bench::BenchMain<egress::bench::Options>(
      "egress_workload_bench", argc, argv, egress::bench::ParseArgs,
      egress::bench::Run);
}
