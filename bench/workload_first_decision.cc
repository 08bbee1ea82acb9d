#include "bench/workload_first_decision.h"

#include <time.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/accept_clock.h"
#include "bench/bench_ops.h"
#include "bench/bench_util.h"
#include "nlohmann/json.hpp"
#include "tests/testing/command.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

using testing::CommandResult;
using testing::Dockerd;

// busybox nc's words for a connect refused with EPERM.
constexpr char kEperm[] = "Operation not permitted";

double Ms(int64_t ns) { return ns / 1e6; }

// egressd's refusals (`egressctl events -o json`, verdicts other than
// ALLOWED) of connects to 127.0.0.1:port made at or after `since_ns`: the
// earliest, and how many records.
struct Decision {
  int64_t ktime_ns = 0;
  std::string verdict, reason;
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
    first = Decision{t, j.value("verdict", ""), j.value("reason", "")};
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

struct RunResult {
  // The first connect was refused (kDenied) or passed (the others).
  bool first_ok = false;
  // From `docker run` to egressd's record of the refusal (kDenied) or to the
  // listener's accept; -1 when neither came.
  double ms = -1;
  std::string outcome;  // what happened, as the table lists it
};

// The container's command. kDenied and kBaseline: `nc` is the entrypoint,
// its connect the container's first act. kAllowed: the same `nc` in a
// bounded retry loop (every 20 ms, at most 250 times) that prints how many
// tries it took, so that a first refusal still ends in the time until the
// connect passed.
std::vector<std::string> Command(Kind kind, const std::string& image,
                                 uint16_t port) {
  const std::string to = absl::StrCat(port);
  if (kind != Kind::kAllowed) {
    return {"--entrypoint", "nc", image, "-w", "2", "127.0.0.1", to};
  }
  return {"--entrypoint", "sh", image, "-c",
          absl::StrCat("i=1; while [ $i -le 250 ]; do nc -w 2 127.0.0.1 ", to,
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
  const std::string& image;
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
  absl::StatusOr<RunResult> RunOne(Kind kind, const std::string& name) {
    Dockerd& docker = kind == Kind::kBaseline ? unfollowed : followed;
    AcceptClock& clock = ClockOf(kind);
    const int accepted_before = clock.accepted();
    const std::string label = absl::StrCat("egress-bench=", KindName(kind));
    std::vector<std::string> args = {"run",  "--name",  name, "--network",
                                     "host", "--label", label};
    for (std::string& a : Command(kind, image, clock.port())) {
      args.push_back(a);
    }
    const int64_t t0 = ClockNs(CLOCK_MONOTONIC);
    EGRESS_ASSIGN_OR_RETURN(CommandResult run,
                            docker.Docker(args, absl::Seconds(60)));
    EGRESS_RETURN_IF_ERROR(docker.DockerOk({"rm", "-f", name}).status());
    if (kind == Kind::kDenied) {
      return Denied(run, clock.accepted() - accepted_before, t0);
    }
    return Passed(run, clock, t0);
  }

  RunResult Denied(const CommandResult& run, int accepted, int64_t t0) {
    RunResult s;
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

  RunResult Passed(const CommandResult& run, AcceptClock& clock, int64_t t0) {
    RunResult s;
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
    const int tries = Tries(run.output);
    s.first_ok = !refused.has_value() && tries <= 1;
    s.outcome = s.first_ok
                    ? "passed at once"
                    : absl::StrCat("passed after ", tries, " tries, first ",
                                   refused ? absl::StrCat("refused as ",
                                                          refused->verdict, " ",
                                                          refused->reason)
                                           : "refused without a record");
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
  absl::StatusOr<std::map<Kind, std::vector<RunResult>>> RunAll(int runs) {
    std::map<Kind, std::vector<RunResult>> out;
    for (int round = -1; round < runs; ++round) {
      for (int k = 0; k < 3; ++k) {
        EGRESS_RETURN_IF_ERROR(CancelledIfStopped());
        const Kind kind = kKinds[(round + 1 + k) % 3];
        const std::string name =
            absl::StrCat("wb-", KindName(kind), "-", round + 1);
        EGRESS_ASSIGN_OR_RETURN(RunResult s, RunOne(kind, name));
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

Stats StatsOf(const std::vector<RunResult>& samples) {
  Stats st;
  std::vector<double> ms;
  for (const RunResult& s : samples) {
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

}  // namespace

absl::Status FirstDecisionPart(Dockerd& followed, EgressdProcess& egressd,
                               const std::string& image, int runs) {
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<Dockerd> unfollowed,
                          Dockerd::Start());
  EGRESS_RETURN_IF_ERROR(unfollowed->ImportBusybox(image));
  EGRESS_ASSIGN_OR_RETURN(auto denied, AcceptClock::Create());
  EGRESS_ASSIGN_OR_RETURN(auto allowed, AcceptClock::Create());
  EGRESS_ASSIGN_OR_RETURN(auto baseline, AcceptClock::Create());
  FirstDecisionBench b{image,   followed, *unfollowed, egressd,
                       *denied, *allowed, *baseline};
  EGRESS_RETURN_IF_ERROR(b.AddTargets());
  absl::StatusOr<std::map<Kind, std::vector<RunResult>>> samples =
      b.RunAll(runs);
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

}  // namespace egress::bench
