// egress_scale_bench: egressd at fleet scale, run as operators run it: the
// built egressd and egressctl binaries, policy files on disk, real cgroups.
// Measures applying 200 targets x 1,000 rules (and how long `status` takes
// while that apply runs), a SIGKILL + restart until every target is adopted
// again, egressd's memory, and one target of 100,000 rules (apply right
// after the start and on a settled egressd, one `allow`, memory after
// removal, one `allow` after a restart, re-applies). Needs root;
// run by hand (bench/README.md).
// Everything it makes (cgroups, pins, state, the daemon) is removed on exit.
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_ops.h"
#include "bench/bench_util.h"
#include "bench/bpf_memory.h"
#include "bench/egressd_process.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/command.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

struct Options {
  int targets = 200;
  int rules = 1000;
  int big_rules = 100000;
  // egressd --shared_program_set (its default): one program set for every
  // target; --noshared_program_set: a set per target, the baseline.
  bool shared_program_set = true;
};

absl::StatusOr<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--shared_program_set" || a == "--noshared_program_set") {
      o.shared_program_set = a == "--shared_program_set";
      continue;
    }
    int* into = nullptr;
    if (absl::ConsumePrefix(&a, "--targets=")) into = &o.targets;
    if (absl::ConsumePrefix(&a, "--rules=")) into = &o.rules;
    if (absl::ConsumePrefix(&a, "--big_rules=")) into = &o.big_rules;
    if (into == nullptr || !absl::SimpleAtoi(a, into) || *into < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown or bad argument '", argv[i],
          "' (flags: --targets=N --rules=N --big_rules=N, 0 skips a part; "
          "--shared_program_set (default) or --noshared_program_set)"));
    }
  }
  return o;
}

// The n-th rule of a bench policy: a /32 in 10.0.0.0/8 and one TCP port, as
// a learned allow-list looks. Data only: nothing is ever sent there.
std::string RuleYaml(int n) {
  return absl::StrCat("  - to:\n    - ipBlock: {cidr: 10.", (n >> 16) & 255,
                      ".", (n >> 8) & 255, ".", n & 255,
                      "/32}\n    ports:\n    - port: ", 1024 + n % 60000,
                      "\n      protocol: TCP\n");
}

// `first`: the number of the first rule (another set of as many rules).
std::string PolicyYaml(const std::string& name, const std::string& cgroup,
                       int rules, int first = 0) {
  std::string y = absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n  "
      "name: ",
      name, "\nspec:\n  target:\n    cgroupPath: ", cgroup,
      "\n  mode: enforce\n  egress:\n");
  for (int i = first; i < first + rules; ++i) absl::StrAppend(&y, RuleYaml(i));
  return y;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// The CPU time (user + system) a process has used, in ms: what a change
// costs egressd itself, whatever else the machine runs meanwhile.
double CpuMs(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces): state is field 3,
  // utime and stime are fields 14 and 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  double utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtod(f[11], &utime) ||
      !absl::SimpleAtod(f[12], &stime)) {
    return 0;
  }
  return (utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The CPU time of this process's reaped children (egressctl, once each
// Ctl returns), in ms.
double ChildrenCpuMs() {
  rusage ru{};
  if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 0;
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

absl::StatusOr<absl::Duration> Timed(EgressdProcess& d,
                                     const std::vector<std::string>& args) {
  const absl::Time start = absl::Now();
  EGRESS_RETURN_IF_ERROR(d.Ctl(args).status());
  return absl::Now() - start;
}

void Row(const char* what, double value, const char* unit, double bound) {
  // Seconds near an aim of 1 s need their hundredths.
  printf("  %-52s %10.*f %-4s (aim < %g: %s)\n", what,
         std::string(unit) == "s" ? 2 : 1, value, unit, bound,
         value < bound ? "met" : "MISSED");
}

// `status -o json` over and over while `busy` holds: the slowest and the
// median answer.
struct StatusLatency {
  std::vector<double> ms;
  double Max() const {
    return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end());
  }
  double Median() {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
};

absl::Status FleetPart(EgressdProcess& d, const Options& o,
                       const std::string& dir, testing::TestCgroup& parent) {
  const std::string policies = dir + "/fleet";
  EGRESS_RETURN_IF_ERROR(MakeDirs(policies, 0700));
  for (int i = 0; i < o.targets; ++i) {
    const std::string name = absl::StrCat("t", i);
    EGRESS_ASSIGN_OR_RETURN(testing::TestCgroup * cg, parent.CreateChild(name));
    std::ofstream(absl::StrCat(policies, "/", name, ".yaml"))
        << PolicyYaml(name, cg->relative_path(), o.rules);
  }
  printf("\n%d targets x %s rules (policy files in one directory):\n",
         o.targets, WithCommas(o.rules).c_str());
  std::atomic<bool> busy{true};
  StatusLatency status;
  std::thread poller([&] {
    for (int i = 0; i < 100000 && busy.load(); ++i) {
      const absl::Time start = absl::Now();
      if (d.Ctl({"status", "-o", "json"}, absl::Seconds(60)).ok()) {
        status.ms.push_back(Ms(absl::Now() - start));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  absl::StatusOr<absl::Duration> apply = Timed(d, {"apply", "-f", policies});
  busy = false;
  poller.join();
  EGRESS_RETURN_IF_ERROR(apply.status());
  Row("apply all (egressctl apply -f DIR)", absl::ToDoubleSeconds(*apply), "s",
      10);
  Row(absl::StrCat("status while the apply ran (max of ", status.ms.size(), ")")
          .c_str(),
      status.Max(), "ms", 100);
  printf("  %-52s %10.1f ms\n", "status while the apply ran (median)",
         status.Median());
  Memory m = d.SettledMemory();
  Row("egressd RSS after the apply", m.rss, "MiB", 200);
  printf("  %-52s %10.1f MiB\n", "egressd peak RSS (VmHWM)", m.peak);
  if (absl::StatusOr<BpfMemory> k = BpfMemoryBelow(d.bpffs()); k.ok()) {
    printf("  %-52s %10d\n", "BPF programs pinned or linked", k->progs);
    printf("  %-52s %10.1f MiB\n", "kernel memlock: programs",
           k->prog_bytes / 1048576.0);
    printf("  %-52s %10.1f MiB\n", "kernel memlock: maps",
           k->map_bytes / 1048576.0);
  }

  // What the targets cost while nothing changes: the rescans of every
  // target's links and cgroup, expiry, metrics.
  const double idle_from = CpuMs(d.pid());
  absl::SleepFor(absl::Seconds(5));
  printf("  %-52s %10.1f ms\n", "egressd CPU per second, idle with the targets",
         (CpuMs(d.pid()) - idle_from) / 5);

  d.Kill();
  const absl::Time start = absl::Now();
  EGRESS_RETURN_IF_ERROR(d.Start());
  const absl::Duration answered = absl::Now() - start;
  int attached = 0;
  for (int i = 0; i < 6000 && attached < o.targets; ++i) {
    attached = d.AttachedTargets();
    if (attached < o.targets) absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration adopted = absl::Now() - start;
  if (attached != o.targets) {
    return absl::InternalError(absl::StrCat("after restart only ", attached,
                                            " of ", o.targets,
                                            " targets are attached"));
  }
  printf("  %-52s %10.1f ms\n", "restart (SIGKILL) until egressd answers",
         Ms(answered));
  Row("restart until every target is adopted", absl::ToDoubleSeconds(adopted),
      "s", 5);
  printf("  %-52s %10.1f MiB\n", "egressd RSS after the restart",
         d.memory().rss);
  // The restart's own work (adoption, the sweep of rulesets no target
  // keeps, the spare writer's copies): the CPU of the new process in its
  // first 5 s.
  absl::SleepFor(start + absl::Seconds(5) - absl::Now());
  printf("  %-52s %10.1f ms\n", "egressd CPU in the 5 s after the restart",
         CpuMs(d.pid()));

  const absl::Time rm = absl::Now();
  for (int i = 0; i < o.targets; ++i) {
    EGRESS_RETURN_IF_ERROR(
        d.Ctl({"target", "remove", absl::StrCat("t", i)}).status());
  }
  printf("  %-52s %10.1f ms\n", "target remove, each (mean)",
         Ms(absl::Now() - rm) / std::max(o.targets, 1));
  printf("  %-52s %10.1f MiB\n", "egressd RSS after every target is removed",
         d.memory().rss);
  return absl::OkStatus();
}

// One `apply -f FILE`: its wall time, egressd's and egressctl's CPU while
// it ran, and egressd's CPU after the answer until its memory settles (the
// state rows and the spare copy run on other threads after the switch).
struct ApplyCost {
  double wall_s = 0, egressd_s = 0, after_s = 0, egressctl_s = 0;
};

absl::StatusOr<ApplyCost> MeasuredApply(EgressdProcess& d,
                                        const std::string& file) {
  ApplyCost c;
  const double cpu = CpuMs(d.pid()), ctl = ChildrenCpuMs();
  EGRESS_ASSIGN_OR_RETURN(absl::Duration wall, Timed(d, {"apply", "-f", file}));
  const double answered = CpuMs(d.pid());
  c.wall_s = absl::ToDoubleSeconds(wall);
  c.egressd_s = (answered - cpu) / 1000;
  c.egressctl_s = (ChildrenCpuMs() - ctl) / 1000;
  d.SettledMemory();
  absl::SleepFor(absl::Milliseconds(500));
  c.after_s = (CpuMs(d.pid()) - answered) / 1000;
  return c;
}

void ApplyRow(const std::string& what, const ApplyCost& c, double aim) {
  if (aim > 0) {
    Row(what.c_str(), c.wall_s, "s", aim);
  } else {
    printf("  %-52s %10.2f s\n", what.c_str(), c.wall_s);
  }
  printf("  %-52s %10.2f s (egressctl %.2f s; egressd after it %.2f s)\n",
         "  egressd CPU while it ran", c.egressd_s, c.egressctl_s, c.after_s);
}

// Files applied again, as operators do: the same file (nothing changes) and
// one whose every rule differs, on a target of `file` applied first.
absl::Status ReapplyPart(EgressdProcess& d, const Options& o,
                         const std::string& file, const std::string& other) {
  EGRESS_ASSIGN_OR_RETURN(ApplyCost apply, MeasuredApply(d, file));
  ApplyRow("apply again on a settled egressd (after a restart)", apply, 1);
  EGRESS_ASSIGN_OR_RETURN(ApplyCost same, MeasuredApply(d, file));
  ApplyRow("the same file again (no change)", same, 0);
  EGRESS_ASSIGN_OR_RETURN(ApplyCost replaced, MeasuredApply(d, other));
  ApplyRow(absl::StrCat("every rule replaced by ", WithCommas(o.big_rules),
                        " others"),
           replaced, 0);
  // MeasuredApply waited for egressd's memory to settle and 0.5 s more:
  // time for the spare writer to copy the new set (it deletes the replaced
  // one after), so the allow writes only its own difference.
  const double cpu = CpuMs(d.pid());
  EGRESS_ASSIGN_OR_RETURN(
      absl::Duration allow,
      Timed(d, {"allow", "2200/tcp", "127.0.0.9", "--target", "big"}));
  Row("one allow 0.5 s after a replacing apply", Ms(allow), "ms", 50);
  printf("  %-52s %10.0f ms\n", "  egressd CPU while it ran",
         CpuMs(d.pid()) - cpu);
  return d.Ctl({"target", "remove", "big"}).status();
}

absl::Status BigPart(EgressdProcess& d, const Options& o,
                     const std::string& dir, testing::TestCgroup& parent) {
  EGRESS_ASSIGN_OR_RETURN(testing::TestCgroup * cg, parent.CreateChild("big"));
  const std::string file = dir + "/big.yaml";
  std::ofstream(file) << PolicyYaml("big", cg->relative_path(), o.big_rules);
  const std::string other = dir + "/big-other.yaml";
  std::ofstream(other) << PolicyYaml("big", cg->relative_path(), o.big_rules,
                                     o.big_rules);
  printf("\none target x %s rules:\n", WithCommas(o.big_rules).c_str());
  const double idle = d.memory().rss;
  // As an operator's first apply after a start: egressd may still be
  // loading its shared program set on a thread of its own.
  const double since_start = absl::ToDoubleSeconds(absl::Now() - d.started());
  EGRESS_ASSIGN_OR_RETURN(ApplyCost first, MeasuredApply(d, file));
  ApplyRow(absl::StrFormat("apply, %.1f s after egressd's start", since_start),
           first, 0);
  Row("egressd RSS with the target (first apply)", d.SettledMemory().rss, "MiB",
      100);
  // The same apply once egressd says its start work is done (/metrics:
  // egress_shared_program_set_loaded 1) and nothing else runs in it.
  EGRESS_RETURN_IF_ERROR(d.Ctl({"target", "remove", "big"}).status());
  EGRESS_ASSIGN_OR_RETURN(absl::Duration settled, d.AwaitStartWorkDone());
  d.SettledMemory();
  printf("  %-52s %10.2f s\n", "egressd's start work done (/metrics), after",
         absl::ToDoubleSeconds(settled));
  EGRESS_ASSIGN_OR_RETURN(ApplyCost apply, MeasuredApply(d, file));
  ApplyRow("apply on a settled egressd (egressctl apply -f FILE)", apply, 1);
  Row("egressd RSS with the target (applied again)", d.SettledMemory().rss,
      "MiB", 100);
  std::vector<double> allow, allow_cpu;
  for (int i = 0; i < 5; ++i) {
    const double cpu = CpuMs(d.pid());
    EGRESS_ASSIGN_OR_RETURN(absl::Duration t,
                            Timed(d, {"allow", absl::StrCat(2000 + i, "/tcp"),
                                      "127.0.0.9", "--target", "big"}));
    allow.push_back(Ms(t));
    allow_cpu.push_back(CpuMs(d.pid()) - cpu);
  }
  // Each allow writes what differs into the target's spare (egressd writes
  // one in the background after the apply); without a spare, the whole set.
  printf("  %-52s %s ms\n", "each allow, in order",
         absl::StrJoin(allow, ", ", [](std::string* out, double ms) {
           absl::StrAppend(out, absl::StrFormat("%.1f", ms));
         }).c_str());
  printf("  %-52s %s ms\n", "egressd CPU of each allow, in order",
         absl::StrJoin(allow_cpu, ", ", [](std::string* out, double ms) {
           absl::StrAppend(out, absl::StrFormat("%.0f", ms));
         }).c_str());
  std::sort(allow.begin(), allow.end());
  Row("one allow (egressctl allow ..., median of 5)", allow[2], "ms", 50);
  EGRESS_ASSIGN_OR_RETURN(absl::Duration list,
                          Timed(d, {"list", "--target", "big", "-o", "json"}));
  printf("  %-52s %10.1f ms\n", "list -o json", Ms(list));
  EGRESS_ASSIGN_OR_RETURN(absl::Duration removed,
                          Timed(d, {"target", "remove", "big"}));
  printf("  %-52s %10.1f ms\n", "target remove (egressctl target remove big)",
         Ms(removed));
  printf("  %-52s %10.1f MiB (before the apply: %.1f)\n",
         "egressd RSS after the target is removed", d.SettledMemory().rss,
         idle);
  // The first allow after a restart: egressd adopts the set from the maps
  // (spares are not kept across a restart).
  EGRESS_RETURN_IF_ERROR(d.Ctl({"apply", "-f", file}).status());
  d.SettledMemory();
  d.Kill();
  EGRESS_RETURN_IF_ERROR(d.Start());
  for (int i = 0; i < 3000 && d.AttachedTargets() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  d.SettledMemory();
  EGRESS_ASSIGN_OR_RETURN(
      absl::Duration restarted,
      Timed(d, {"allow", "2100/tcp", "127.0.0.9", "--target", "big"}));
  printf("  %-52s %10.1f ms\n", "first allow after a restart (SIGKILL)",
         Ms(restarted));
  EGRESS_RETURN_IF_ERROR(d.Ctl({"target", "remove", "big"}).status());
  d.SettledMemory();
  return ReapplyPart(d, o, file, other);
}

absl::Status Run(const Options& o) {
  char tmpl[] = "/tmp/egress-scale-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string dir = tmpl;
  absl::Cleanup rm_dir = [&] { (void)RemoveTree(dir); };
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<testing::TestCgroup> parent,
                          testing::TestCgroup::Create("scale"));
  // Always named: the bench says which layout it measured.
  const char* layout =
      o.shared_program_set ? "--shared_program_set" : "--noshared_program_set";
  std::vector<std::string> extra = {layout};
  EgressdProcess d(dir, absl::StrCat("/sys/fs/bpf/egress-scale-", getpid()),
                   extra);
  EGRESS_RETURN_IF_ERROR(d.Start());
  printf(
      "egress_scale_bench: egressd %s %s, load average at start %s",
      EgressdPath(), layout,
      testing::RunCommandOk({"cat", "/proc/loadavg"}).value_or("?\n").c_str());
  printf("  %-52s %10.1f MiB\n", "egressd RSS idle", d.memory().rss);
  // What one `egressctl status` costs with nothing else going on: the
  // floor of the "status while the apply ran" row (a process start, one
  // request, one answer).
  StatusLatency idle;
  for (int i = 0; i < 10; ++i) {
    const absl::Time start = absl::Now();
    EGRESS_RETURN_IF_ERROR(d.Ctl({"status", "-o", "json"}).status());
    idle.ms.push_back(Ms(absl::Now() - start));
  }
  printf("  %-52s %10.1f ms\n", "status, idle (median of 10)", idle.Median());
  if (o.targets > 0 && o.rules >= 0) {
    EGRESS_RETURN_IF_ERROR(FleetPart(d, o, dir, *parent));
  }
  if (StopRequested()) return absl::CancelledError("stopped");
  if (o.big_rules > 0) EGRESS_RETURN_IF_ERROR(BigPart(d, o, dir, *parent));
  d.Kill();
  return parent->Remove();
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) {
  return egress::bench::BenchMain<egress::bench::Options>(
      "egress_scale_bench", argc, argv, egress::bench::ParseArgs,
      egress::bench::Run);
}
