// egress_plan_bench: the pure logic of issue 13's replacing apply of 100,000
// rules, without egressd or the kernel: PlanAgainstState (under the engine's
// lock in egressd) for a target of 100,000 rules replaced by 100,000 others
// and for the same rules again, and policy::Compile of 100,000 /32 + port
// rules (the new set's compile in StageAll). No root. See bench/README.md.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "tests/testing/address_rule.h"
#include "userspace/daemon/apply_plan.h"
#include "userspace/policy/compile.h"

namespace egress {
namespace {

// `count` rules of the scale bench's file, the first of them number `first`,
// in a list with the room a decoded request's has (rule_json_tree.h).
std::vector<policy::Rule> Rules(int first, int count) {
  std::vector<policy::Rule> rules;
  rules.reserve(count + count / 8 + 8);
  for (int i = first; i < first + count; ++i) {
    rules.push_back(
        testing::AddressRule(0, static_cast<uint32_t>(i), 1024, 60000));
  }
  return rules;
}

// The state after an apply of rules [0, count): target "big", ids 1..count.
DaemonState StateWith(int count) {
  TargetState t;
  t.name = "big";
  t.id = 1;
  t.ruleset = 1;
  t.source = policy::TargetSource::kCgroup;
  t.source_value = "/egress-big";
  t.cgroup = "/egress-big";
  t.rules = Rules(0, count);
  for (policy::Rule& r : t.rules) r.id = t.next_rule_id++;
  DaemonState state;
  state.next_ruleset = 2;
  state.targets["big"] = std::move(t);
  return state;
}

std::vector<ResolvedPolicy> PolicyOf(std::vector<policy::Rule> rules) {
  ResolvedPolicy p;
  p.spec.name = "big";
  p.spec.source = policy::TargetSource::kCgroup;
  p.spec.source_value = "/egress-big";
  p.spec.file = "/tmp/big.yaml";
  p.spec.rules = std::move(rules);
  p.cgroup = "/egress-big";
  std::vector<ResolvedPolicy> policies;
  policies.push_back(std::move(p));
  return policies;
}

// The CPU time this process has used, in ms. The bench is one thread; CPU
// time, unlike wall time, leaves out the waits for a core that other
// processes on a shared machine cause.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// CPU milliseconds of `run`, the median of `reps` runs; `prepare` (not
// timed) before each builds what the run consumes.
double MedianMs(int reps, const std::function<void()>& prepare,
                const std::function<bool()>& run) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    prepare();
    const double start = CpuMs();
    if (!run()) {
      fprintf(stderr, "egress_plan_bench: a run failed\n");
      exit(1);
    }
    ms.push_back(CpuMs() - start);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int Main(int argc, char** argv) {
  int count = 100000, reps = 5;
  // --only=replace|same|compile: one part, for a profile of it alone.
  std::string only;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--only=")) {
      only = std::string(a);
      continue;
    }
    int* into = nullptr;
    if (absl::ConsumePrefix(&a, "--rules=")) into = &count;
    if (absl::ConsumePrefix(&a, "--reps=")) into = &reps;
    if (into == nullptr || !absl::SimpleAtoi(a, into) || *into <= 0) {
      fprintf(stderr,
              "usage: egress_plan_bench [--rules=N] [--reps=N] "
              "[--only=replace|same|compile]\n");
      return 2;
    }
  }
  const DaemonState state = StateWith(count);
  std::vector<ResolvedPolicy> policies;
  size_t lines = 0;
  // The plan outlives the timed run, as egressd's does (freed in `prepare`).
  ApplyPlan kept;
  auto plan = [&] {
    absl::StatusOr<ApplyPlan> p = PlanAgainstState(state, policies, 1);
    if (!p.ok()) return false;
    const control::TargetChange& c = p->changes[0];
    lines = c.added.size() + c.removed.size() + c.changed.size();
    kept = *std::move(p);
    return true;
  };
  auto part = [&](const char* name) { return only.empty() || only == name; };
  double replaced = 0, same = 0, compile = 0;
  size_t replaced_lines = 0, entries = 0;
  if (part("replace")) {
    replaced = MedianMs(
        reps,
        [&] {
          kept = ApplyPlan();
          policies = PolicyOf(Rules(count, count));
        },
        plan);
    replaced_lines = lines;
  }
  if (part("same")) {
    same = MedianMs(
        reps,
        [&] {
          kept = ApplyPlan();
          policies = PolicyOf(Rules(0, count));
        },
        plan);
  }
  const std::vector<policy::Rule>& rules = state.targets.at("big").rules;
  policy::CompiledRuleset compiled;
  if (part("compile")) {
    compile = MedianMs(
        reps, [&] { compiled = policy::CompiledRuleset(); },
        [&] {
          absl::StatusOr<policy::CompiledRuleset> c = policy::Compile(2, rules);
          if (!c.ok()) return false;
          entries = c->rules.size() + c->exact.size() + c->ports.size();
          compiled = *std::move(c);
          return true;
        });
  }
  printf("%d rules, CPU time, median of %d runs:\n", count, reps);
  printf("  PlanAgainstState, every rule replaced: %8.1f ms (%zu diff lines)\n",
         replaced, replaced_lines);
  printf("  PlanAgainstState, the same rules again: %8.1f ms\n", same);
  printf("  Compile:                               %8.1f ms (%zu entries)\n",
         compile, entries);
  return 0;
}

}  // namespace
}  // namespace egress

int main(int argc, char** argv) { return egress::Main(argc, argv); }
