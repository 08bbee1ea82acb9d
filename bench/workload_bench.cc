// egress_workload_bench: containers as users run them, through a real dockerd
// (tests/testing/dockerd.h) and the built egressd and egressctl.
//  1. The time from `docker run` to egressd's first enforced decision for
//     the container: its entrypoint connects to a loopback address its
//     target's policy denies, as its first act. Interleaved with the same
//     `docker run` of a container its target allows, and of one on a second,
//     identical dockerd that egressd does not follow (the baseline): the
//     time until the listener accepts.
//  2. Many running containers put under enforcement at once, by one selector
//     target and by one container target each: the time until every
//     container's cgroup has the target's hooks attached, egressd's memory
//     and the kernel memory of its BPF objects.
// Needs root; run by hand (bench/README.md). Traffic goes to 127.0.0.1 only,
// containers use the host network and numeric addresses. Containers,
// dockerds, egressd, cgroups and pins are removed on exit, error, SIGINT and
// SIGTERM.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/accept_clock.h"
#include "bench/bench_ops.h"
#include "bench/bench_util.h"
#include "bench/bpf_memory.h"
#include "bench/egressd_process.h"
#include "nlohmann/json.hpp"
#include "tests/testing/command.h"
#include "tests/testing/dockerd.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

using testing::CommandResult;
using testing::Dockerd;

constexpr char kImage[] = "egress-bench-busybox:1";
// busybox nc's words for a connect refused with EPERM.
constexpr char kEperm[] = "Operation not permitted";
constexpr char kFleetLabel[] = "egress-bench-fleet=1";

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

absl::Status Stopped() {
  return StopRequested() ? absl::CancelledError("stopped") : absl::OkStatus();
}

double Ms(int64_t ns) { return ns / 1e6; }

// egressd's refusals (`egressctl events -o json`, verdicts other than
// ALLOWED) of connects to 127.0.0.1:port made at or after `since_ns`: the
// earliest, and how many records.
struct Decision {
  int64_t ktime_ns = 0;
  std::string verdict, reason, target;
  int records = 0;
};

std::optional<Decision> FirstDecisionOnce(EgressdProcess& d, uint16_t port,
                                          int64_t since_ns) {
  auto out =
      d.Ctl({"events", "--last", "1000", "-o", "json"}, absl::Seconds(30));
  if (!out.ok()) return std::nullopt;
  std::optional<Decision> first;
  int records = 0;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("l4")) continue;
    const nlohmann::json& l4 = j["l4"];
    const int64_t t = j.value("ktime_ns", int64_t{0});
    if (l4.value("destination", "") != "127.0.0.1" ||
        l4.value("destination_port", 0) != port || t < since_ns ||
        j.value("verdict", "") == "ALLOWED") {
      continue;
    }
    ++records;
    if (first && first->ktime_ns <= t) continue;
    first = Decision{t, j.value("verdict", ""), j.value("reason", ""),
                     j.value("target", "")};
  }
  if (first) first->records = records;
  return first;
}

// Waits (bounded) for the record: egressd drains the ring every 50 ms.
std::optional<Decision> FirstDecision(EgressdProcess& d, uint16_t port,
                                      int64_t since_ns) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    if (auto r = FirstDecisionOnce(d, port, since_ns)) return r;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  return std::nullopt;
}

// Part 1 ---------------------------------------------------------------------

enum class Kind { kDenied, kAllowed, kBaseline };
constexpr Kind kKinds[] = {Kind::kDenied, Kind::kAllowed, Kind::kBaseline};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kDenied:
      return "deny";
    case Kind::kAllowed:
      return "allow";
    case Kind::kBaseline:
      return "baseline";
  }
  return "?";
}

struct Sample {
  // The first connect was refused (kDenied) or passed (the others).
  bool first_ok = false;
  // From `docker run` to egressd's record of the refusal (kDenied) or to the
  // listener's accept; -1 when neither came.
  double ms = -1;
  std::string outcome;  // the first record's verdict and reason, or ...
};

// The container's command. kDenied and kBaseline: `nc` is the entrypoint,
// its connect the container's first act. kAllowed: the same `nc` in a
// bounded retry loop (every 20 ms, at most 250 times) that prints how many
// tries it took, so that a first refusal still ends in the time until the
// connect passed.
std::vector<std::string> Command(Kind kind, uint16_t port) {
  const std::string nc = absl::StrCat("nc -w 2 127.0.0.1 ", port);
  if (kind != Kind::kAllowed) {
    return {"--entrypoint",    "nc", kImage, "-w", "2", "127.0.0.1",
            absl::StrCat(port)};
  }
  return {"--entrypoint", "sh", kImage, "-c",
          absl::StrCat("i=1; while [ $i -le 250 ]; do ", nc,
                       " && echo tries=$i && exit 0; i=$((i+1)); sleep 0.02; "
                       "done; exit 1")};
}

// "tries=N" of the kAllowed loop; 0 when absent.
int Tries(absl::string_view output) {
  size_t at = output.rfind("tries=");
  int n = 0;
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = output.substr(at + 6);
  (void)absl::SimpleAtoi(rest.substr(0, rest.find_first_of("\r\n")), &n);
  return n;
}

struct FirstDecisionBench {
  Dockerd& followed;    // egressd follows it
  Dockerd& unfollowed;  // egressd does not know it: the baseline
  EgressdProcess& egressd;
  AcceptClock& denied;
  AcceptClock& allowed;
  AcceptClock& baseline;

  AcceptClock& ClockOf(Kind k) {
    return k == Kind::kDenied    ? denied
           : k == Kind::kAllowed ? allowed
                                 : baseline;
  }

  // One `docker run` of the kind's container, removed afterwards.
  absl::StatusOr<Sample> RunOne(Kind kind, const std::string& name) {
    Dockerd& docker = kind == Kind::kBaseline ? unfollowed : followed;
    AcceptClock& clock = ClockOf(kind);
    const int accepted_before = clock.accepted();
    std::vector<std::string> args = {
        "run",
        "--name",
        name,
        "--network",
        "host",
        "--label",
        absl::StrCat("egress-bench=", KindName(kind))};
    for (std::string& a : Command(kind, clock.port())) args.push_back(a);
    const int64_t t0 = ClockNs(CLOCK_MONOTONIC);
    EGRESS_ASSIGN_OR_RETURN(CommandResult run,
                            docker.Docker(args, absl::Seconds(60)));
    EGRESS_RETURN_IF_ERROR(docker.DockerOk({"rm", "-f", name}).status());
    if (kind == Kind::kDenied) {
      return Denied(run, clock.accepted() - accepted_before, t0);
    }
    return Passed(run, clock, t0);
  }

  Sample Denied(const CommandResult& run, int accepted, int64_t t0) {
    Sample s;
    std::optional<Decision> d = FirstDecision(egressd, denied.port(), t0);
    s.first_ok =
        absl::StrContains(run.output, kEperm) && d.has_value() && accepted == 0;
    s.outcome = d ? absl::StrCat(d->verdict, " ", d->reason) : "no record";
    if (d && d->records != 1) {
      absl::StrAppend(&s.outcome, " (", d->records, " records)");
    }
    if (s.first_ok) s.ms = Ms(d->ktime_ns - t0);
    return s;
  }

  Sample Passed(const CommandResult& run, AcceptClock& clock, int64_t t0) {
    Sample s;
    std::optional<int64_t> accept =
        clock.FirstAcceptSince(t0, absl::Seconds(5));
    if (!accept || run.exit_code != 0) {
      s.outcome = absl::StrCat("failed, exit ", run.exit_code, ": ",
                               absl::StripAsciiWhitespace(run.output));
      return s;
    }
    s.ms = Ms(*accept - t0);
    // A refusal is recorded within egressd's 50 ms drain.
    absl::SleepFor(absl::Milliseconds(150));
    std::optional<Decision> refused =
        FirstDecisionOnce(egressd, clock.port(), t0);
    s.first_ok = !refused.has_value();
    s.outcome = refused ? absl::StrCat("passed after ", Tries(run.output),
                                       " tries, first refused as ",
                                       refused->verdict, " ", refused->reason)
                        : "passed at once";
    return s;
  }

  absl::Status AddTargets() {
    EGRESS_RETURN_IF_ERROR(egressd
                               .Ctl({"target", "add", "wb-deny", "--selector",
                                     "egress-bench=deny"})
                               .status());
    EGRESS_RETURN_IF_ERROR(egressd
                               .Ctl({"target", "add", "wb-allow", "--selector",
                                     "egress-bench=allow"})
                               .status());
    return egressd
        .Ctl({"allow", absl::StrCat(allowed.port(), "/tcp"), "127.0.0.1",
              "--target", "wb-allow"})
        .status();
  }

  absl::Status RemoveTargets() {
    EGRESS_RETURN_IF_ERROR(
        egressd.Ctl({"target", "remove", "wb-deny"}).status());
    return egressd.Ctl({"target", "remove", "wb-allow"}).status();
  }

  // `runs` rounds of one container of each kind, the order rotating from
  // round to round so that drift falls on every kind alike; one untimed
  // round first (the first container of a dockerd starts slower).
  absl::StatusOr<std::map<Kind, std::vector<Sample>>> RunAll(int runs) {
    std::map<Kind, std::vector<Sample>> out;
    for (int round = -1; round < runs; ++round) {
      for (int k = 0; k < 3; ++k) {
        EGRESS_RETURN_IF_ERROR(Stopped());
        const Kind kind = kKinds[(round + 1 + k) % 3];
        const std::string name =
            absl::StrCat("wb-", KindName(kind), "-", round + 1);
        EGRESS_ASSIGN_OR_RETURN(Sample s, RunOne(kind, name));
        if (round >= 0) out[kind].push_back(s);
      }
    }
    return out;
  }
};

struct Stats {
  int first_ok = 0, timed = 0, n = 0;
  double median = 0, p90 = 0, max = 0;
  std::map<std::string, int> outcomes;
};

Stats StatsOf(const std::vector<Sample>& samples) {
  Stats st;
  std::vector<double> ms;
  for (const Sample& s : samples) {
    ++st.n;
    ++st.outcomes[s.outcome];
    if (s.first_ok) ++st.first_ok;
    if (s.ms < 0) continue;
    ++st.timed;
    ms.push_back(s.ms);
  }
  st.median = Median(ms);
  st.p90 = Quantile(ms, 0.9);
  st.max = Quantile(ms, 1.0);
  return st;
}

void PrintStats(const char* what, const Stats& st) {
  printf("  %-46s %3d/%-3d %3d  %8.1f %8.1f %8.1f\n", what, st.first_ok, st.n,
         st.timed, st.median, st.p90, st.max);
  for (const auto& [outcome, count] : st.outcomes) {
    printf("      %dx %s\n", count, outcome.c_str());
  }
}

absl::Status FirstDecisionPart(Dockerd& followed, EgressdProcess& egressd,
                               int runs) {
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<Dockerd> unfollowed,
                          Dockerd::Start());
  EGRESS_RETURN_IF_ERROR(unfollowed->ImportBusybox(kImage));
  EGRESS_ASSIGN_OR_RETURN(auto denied, AcceptClock::Create());
  EGRESS_ASSIGN_OR_RETURN(auto allowed, AcceptClock::Create());
  EGRESS_ASSIGN_OR_RETURN(auto baseline, AcceptClock::Create());
  FirstDecisionBench b{followed, *unfollowed, egressd,
                       *denied,  *allowed,    *baseline};
  EGRESS_RETURN_IF_ERROR(b.AddTargets());
  absl::StatusOr<std::map<Kind, std::vector<Sample>>> samples = b.RunAll(runs);
  EGRESS_RETURN_IF_ERROR(b.RemoveTargets());
  EGRESS_RETURN_IF_ERROR(samples.status());

  printf(
      "\n1. docker run -> first decision, %d rounds (entrypoint: nc -w 2 "
      "127.0.0.1 PORT)\n",
      runs);
  printf("  %-46s %-7s %5s %8s %8s %8s\n", "ms from docker run to ...",
         "first ok", "timed", "median", "p90", "max");
  const Stats deny = StatsOf((*samples)[Kind::kDenied]);
  const Stats allow = StatsOf((*samples)[Kind::kAllowed]);
  const Stats base = StatsOf((*samples)[Kind::kBaseline]);
  PrintStats("denied: egressd's record of the refusal", deny);
  PrintStats("allowed by its target: the accept", allow);
  PrintStats("baseline (dockerd not followed): the accept", base);
  if (base.median > 0 && base.p90 > 0) {
    printf("  %-46s median %.3f, p90 %.3f\n", "ratio denied / baseline",
           deny.median / base.median, deny.p90 / base.p90);
    printf("  %-46s median %.3f, p90 %.3f\n", "ratio allowed / baseline",
           allow.median / base.median, allow.p90 / base.p90);
  }
  if (deny.first_ok != deny.n) {
    printf(
        "  ANOMALY: %d of %d denied containers got through or were not "
        "recorded\n",
        deny.n - deny.first_ok, deny.n);
  }
  if (denied->accepted() != 0) {
    printf("  ANOMALY: the denied listener accepted %d connections\n",
           denied->accepted());
  }
  return absl::OkStatus();
}

// Part 2 ---------------------------------------------------------------------

std::string FleetName(int i) { return absl::StrCat("wb-fleet-", i); }

// `docker run -d` of n sleepers on the host network; removes them when the
// returned cleanup runs (also if starting them failed half-way).
absl::Status StartSleepers(Dockerd& docker, int n) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    EGRESS_RETURN_IF_ERROR(Stopped());
    EGRESS_RETURN_IF_ERROR(
        docker
            .DockerOk({"run", "-d", "--name", FleetName(i), "--network", "host",
                       "--label", kFleetLabel, kImage, "sleep", "36000"},
                      absl::Seconds(60))
            .status());
  }
  printf("  %-52s %10.1f s\n",
         absl::StrCat("docker run -d of ", n, " sleepers").c_str(),
         absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

// docker rm -f in batches of 25 (one call for 200 outlasts a minute).
absl::Status RemoveSleepers(Dockerd& docker, int n) {
  for (int i = 0; i < n; i += 25) {
    std::vector<std::string> args = {"rm", "-f"};
    for (int j = i; j < n && j < i + 25; ++j) args.push_back(FleetName(j));
    EGRESS_RETURN_IF_ERROR(docker.Docker(args, absl::Seconds(120)).status());
  }
  return absl::OkStatus();
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
    EGRESS_RETURN_IF_ERROR(Stopped());
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
          return Enforcing(t, n)
                     ? n
                     : static_cast<int>(
                           t.value("cgroups", nlohmann::json::array()).size());
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
    EGRESS_RETURN_IF_ERROR(Stopped());
    EGRESS_RETURN_IF_ERROR(d.Ctl({"target", "remove", FleetName(i)}).status());
  }
  printf("  %-52s %10.1f ms\n", "target remove, each (mean)",
         absl::ToDoubleMilliseconds(absl::Now() - rm) / n);
  PrintMemory(d, "after they are removed");
  return absl::OkStatus();
}

absl::Status FleetPart(Dockerd& docker, EgressdProcess& d,
                       const std::string& dir, int n) {
  printf("\n2. %d running containers (busybox sleep, host network)\n", n);
  absl::Cleanup remove = [&] { (void)RemoveSleepers(docker, n); };
  EGRESS_RETURN_IF_ERROR(StartSleepers(docker, n));
  PrintMemory(d, "idle (no workload targets)");
  EGRESS_RETURN_IF_ERROR(SelectorTarget(d, n));
  EGRESS_RETURN_IF_ERROR(Stopped());
  EGRESS_RETURN_IF_ERROR(ContainerTargets(d, dir, n));
  printf("  %-52s %10.1f MiB\n", "egressd peak RSS (VmHWM)", d.memory().peak);
  return absl::OkStatus();
}

// ----------------------------------------------------------------------------

void PrintHeader() {
  auto load = testing::RunCommandOk({"cat", "/proc/loadavg"});
  auto date = testing::RunCommandOk({"date", "-u", "+%Y-%m-%d %H:%M UTC"});
  auto kernel = testing::RunCommandOk({"uname", "-r"});
  printf("egress_workload_bench: %s, kernel %s, %ld cpus, load average %s",
         std::string(absl::StripTrailingAsciiWhitespace(date.value_or("?")))
             .c_str(),
         std::string(absl::StripTrailingAsciiWhitespace(kernel.value_or("?")))
             .c_str(),
         sysconf(_SC_NPROCESSORS_ONLN), load.value_or("?\n").c_str());
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
    EGRESS_RETURN_IF_ERROR(FirstDecisionPart(*docker, egressd, o.runs));
  }
  if (o.containers > 0) {
    EGRESS_RETURN_IF_ERROR(FleetPart(*docker, egressd, dir, o.containers));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) {
  return egress::bench::BenchMain<egress::bench::Options>(
      "egress_workload_bench", argc, argv, egress::bench::ParseArgs,
      egress::bench::Run);
}
