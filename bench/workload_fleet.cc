#include "bench/workload_fleet.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_ops.h"
#include "bench/bpf_memory.h"
#include "nlohmann/json.hpp"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

using testing::Dockerd;

constexpr char kFleetLabel[] = "egress-bench-fleet=1";

std::string FleetName(int i) { return absl::StrCat("wb-fleet-", i); }

// `docker run -d` of n sleepers on the host network.
absl::Status StartSleepers(Dockerd& docker, const std::string& image, int n) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    EGRESS_RETURN_IF_ERROR(CancelledIfStopped());
    EGRESS_RETURN_IF_ERROR(
        docker
            .DockerOk({"run", "-d", "--name", FleetName(i), "--network", "host",
                       "--label", kFleetLabel, image, "sleep", "36000"},
                      absl::Seconds(60))
            .status());
  }
  printf("  %-52s %10.1f s\n",
         absl::StrCat("docker run -d of ", n, " sleepers").c_str(),
         absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

// docker rm -f in batches of 25 (one call for 200 outlasts a minute); every
// batch is tried, whatever an earlier one did (a name that never started is
// fine). What is left goes with the dockerd fixture.
void RemoveSleepers(Dockerd& docker, int n) {
  for (int i = 0; i < n; i += 25) {
    std::vector<std::string> args = {"rm", "-f"};
    for (int j = i; j < n && j < i + 25; ++j) args.push_back(FleetName(j));
    docker.Docker(args, absl::Seconds(120)).IgnoreError();
  }
}

// A target is enforcing its containers when all `want` of them are listed
// as its cgroups and every hook is attached.
bool Enforcing(const nlohmann::json& t, size_t want) {
  return t.value("attached", false) && t.contains("cgroups") &&
         t["cgroups"].size() == want;
}

// Polls `target list -o json` (bounded: 5 minutes) until `enforced(targets)`
// counts `want`; returns the time since `start`.
absl::StatusOr<absl::Duration> WaitEnforced(
    EgressdProcess& d, absl::Time start, int want,
    const std::function<int(const nlohmann::json&)>& enforced) {
  const absl::Time deadline = absl::Now() + absl::Minutes(5);
  int last = -1;
  while (absl::Now() < deadline) {
    EGRESS_RETURN_IF_ERROR(CancelledIfStopped());
    auto out = d.Ctl({"target", "list", "-o", "json"}, absl::Seconds(60));
    if (out.ok()) {
      nlohmann::json j = nlohmann::json::parse(*out, nullptr, false);
      if (j.is_object() && j.contains("targets")) {
        last = enforced(j["targets"]);
        if (last == want) return absl::Now() - start;
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("after 5 minutes ", last, " of ", want,
                   " containers are enforced; see ", d.log_path()));
}

void PrintMemory(EgressdProcess& d, const char* when) {
  // Give egressd's reconciler a pass to settle and trim.
  absl::SleepFor(absl::Seconds(1));
  printf("  %-52s %10.1f MiB\n", absl::StrCat("egressd RSS ", when).c_str(),
         d.memory().rss);
  absl::StatusOr<BpfMemory> bpf = BpfMemoryBelow(d.bpffs());
  if (!bpf.ok()) {
    printf("  %-52s %s\n", "BPF memlock", bpf.status().ToString().c_str());
    return;
  }
  printf("  %-52s %10.1f MiB (%d progs %.1f, %d maps %.1f; %d links)\n",
         "BPF memlock below egressd's pin directory",
         (bpf->prog_bytes + bpf->map_bytes) / 1048576.0, bpf->progs,
         bpf->prog_bytes / 1048576.0, bpf->maps, bpf->map_bytes / 1048576.0,
         bpf->links);
}

void PrintDuration(const char* what, absl::Duration d) {
  printf("  %-52s %10.1f s\n", what, absl::ToDoubleSeconds(d));
}

absl::Status SelectorTarget(EgressdProcess& d, int n) {
  printf(" (a) one selector target (--selector %s)\n", kFleetLabel);
  const absl::Time start = absl::Now();
  EGRESS_RETURN_IF_ERROR(
      d.Ctl({"target", "add", "wb-fleet", "--selector", kFleetLabel}).status());
  PrintDuration("egressctl target add returned", absl::Now() - start);
  EGRESS_ASSIGN_OR_RETURN(
      absl::Duration all,
      WaitEnforced(d, start, n, [n](const nlohmann::json& targets) {
        for (const nlohmann::json& t : targets) {
          if (t.value("name", "") != "wb-fleet") continue;
          // Until it is enforcing: how many cgroups it lists so far.
          const int listed = static_cast<int>(
              t.value("cgroups", nlohmann::json::array()).size());
          return Enforcing(t, n) ? n : std::min(listed, n - 1);
        }
        return 0;
      }));
  PrintDuration("until every container is enforced", all);
  PrintMemory(d, "with the target");
  const absl::Time rm = absl::Now();
  EGRESS_RETURN_IF_ERROR(d.Ctl({"target", "remove", "wb-fleet"}).status());
  PrintDuration("target remove", absl::Now() - rm);
  PrintMemory(d, "after it is removed");
  return absl::OkStatus();
}

std::string ContainerPolicyYaml(const std::string& name) {
  return absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n  "
      "name: ",
      name, "\nspec:\n  target:\n    container: ", name,
      "\n  mode: enforce\n  egress:\n  - to:\n    - ipBlock: {cidr: "
      "127.0.0.1/32}\n    ports:\n    - port: 9\n      protocol: TCP\n");
}

absl::Status ContainerTargets(EgressdProcess& d, const std::string& dir,
                              int n) {
  printf(
      " (b) %d container targets (one policy file each, one "
      "egressctl apply -f DIR)\n",
      n);
  const std::string policies = dir + "/fleet";
  EGRESS_RETURN_IF_ERROR(MakeDirs(policies, 0700));
  for (int i = 0; i < n; ++i) {
    std::ofstream(absl::StrCat(policies, "/", FleetName(i), ".yaml"))
        << ContainerPolicyYaml(FleetName(i));
  }
  const absl::Time start = absl::Now();
  EGRESS_RETURN_IF_ERROR(d.Ctl({"apply", "-f", policies}).status());
  PrintDuration("egressctl apply returned", absl::Now() - start);
  EGRESS_ASSIGN_OR_RETURN(
      absl::Duration all,
      WaitEnforced(d, start, n, [](const nlohmann::json& targets) {
        int enforced = 0;
        for (const nlohmann::json& t : targets) {
          if (absl::StartsWith(t.value("name", ""), "wb-fleet-") &&
              Enforcing(t, 1)) {
            ++enforced;
          }
        }
        return enforced;
      }));
  PrintDuration("until every container is enforced", all);
  PrintMemory(d, "with the targets");
  const absl::Time rm = absl::Now();
  for (int i = 0; i < n; ++i) {
    EGRESS_RETURN_IF_ERROR(CancelledIfStopped());
    EGRESS_RETURN_IF_ERROR(d.Ctl({"target", "remove", FleetName(i)}).status());
  }
  printf("  %-52s %10.1f ms\n", "target remove, each (mean)",
         absl::ToDoubleMilliseconds(absl::Now() - rm) / n);
  PrintMemory(d, "after they are removed");
  return absl::OkStatus();
}

}  // namespace

absl::Status FleetPart(Dockerd& docker, EgressdProcess& d,
                       const std::string& image, const std::string& dir,
                       int n) {
  printf("\n2. %d running containers (busybox sleep, host network)\n", n);
  absl::Cleanup remove = [&] { RemoveSleepers(docker, n); };
  EGRESS_RETURN_IF_ERROR(StartSleepers(docker, image, n));
  PrintMemory(d, "idle (no workload targets)");
  EGRESS_RETURN_IF_ERROR(SelectorTarget(d, n));
  EGRESS_RETURN_IF_ERROR(CancelledIfStopped());
  EGRESS_RETURN_IF_ERROR(ContainerTargets(d, dir, n));
  printf("  %-52s %10.1f MiB\n", "egressd peak RSS (VmHWM)", d.memory().peak);
  return absl::OkStatus();
}

}  // namespace egress::bench
