// egress_store_bench: the state database and the learned history at scale,
// against the state.json they replace, in one run. No root, no egressd; it
// works in a temporary directory it removes. See bench/README.md.
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/address_rule.h"
#include "userspace/common/fs.h"
#include "userspace/daemon/learn_history.h"
#include "userspace/daemon/state.h"
#include "userspace/daemon/state_store.h"
#include "userspace/daemon/state_write.h"
#include "userspace/policy/suggest.h"

namespace egress {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kHour = 3600 * kSec;

policy::Rule BenchRule(uint32_t id, uint32_t n) {
  return testing::AddressRule(id, n, 1000, 60000);
}

TargetState BenchTarget(int index, int rules) {
  TargetState t;
  t.name = absl::StrCat("t", index);
  t.id = static_cast<uint32_t>(index + 1);
  t.cgroup = "/" + t.name;
  t.ruleset = static_cast<uint32_t>(index + 1);
  for (int i = 0; i < rules; ++i) {
    t.rules.push_back(BenchRule(t.next_rule_id++, static_cast<uint32_t>(i)));
  }
  return t;
}

double Ms(absl::Time since) {
  return absl::ToDoubleMilliseconds(absl::Now() - since);
}

int Fail(const absl::Status& st) {
  fprintf(stderr, "egress_store_bench: %s\n", st.ToString().c_str());
  return 1;
}

int Run(const std::string& dir) {
  // ---- 200 targets x 1,000 rules ----
  DaemonState state;
  state.next_ruleset = 1000;
  for (int i = 0; i < 200; ++i)
    state.targets[absl::StrCat("t", i)] = BenchTarget(i, 1000);
  {
    absl::Time t0 = absl::Now();
    for (int i = 0; i < 3; ++i) {
      if (auto st = SaveState(dir + "/old.json", state); !st.ok()) {
        return Fail(st);
      }
    }
    printf(
        "state.json (before): save whole state, 200x1000 rules: %.0f ms "
        "per change\n",
        Ms(t0) / 3);
  }
  auto store = StateStore::Open(dir);
  if (!store.ok()) return Fail(store.status());
  {
    absl::Time t0 = absl::Now();
    for (const auto& [name, t] : state.targets) {
      StateWrite w{state.next_ruleset, {{name, &t, RulesDelta{}}}};
      if (auto st = (*store)->Write(w); !st.ok()) return Fail(st);
    }
    printf(
        "state.db: write 200 targets x 1000 rules, one transaction each: "
        "%.0f ms total\n",
        Ms(t0));
  }
  {
    absl::Time t0 = absl::Now();
    auto again = StateStore::Open(dir);
    if (!again.ok()) return Fail(again.status());
    auto loaded = (*again)->Load();
    if (!loaded.ok()) return Fail(loaded.status());
    printf("state.db: open + load 200 x 1000 rules (restart read): %.0f ms\n",
           Ms(t0));
  }
  {
    TargetState t = state.targets.at("t7");
    TargetState next = t;
    next.rules.push_back(BenchRule(next.next_rule_id++, 99999));
    absl::Time t0 = absl::Now();
    RulesDelta d = DiffRules(t.rules, next.rules);
    StateWrite w{state.next_ruleset, {{t.name, &next, d}}};
    if (auto st = (*store)->Write(w); !st.ok()) return Fail(st);
    printf(
        "state.db: one allow on a 1000-rule target of 200: %.2f ms "
        "(%lld rows)\n",
        Ms(t0), static_cast<long long>((*store)->last_write_rows()));
  }
  // ---- one target x 100,000 rules ----
  {
    TargetState big = BenchTarget(500, 100000);
    big.name = "big";
    StateWrite w{state.next_ruleset, {{"big", &big, RulesDelta{}}}};
    absl::Time t0 = absl::Now();
    if (auto st = (*store)->Write(w); !st.ok()) return Fail(st);
    printf("state.db: write 100,000 rules whole: %.0f ms\n", Ms(t0));
    // An apply that replaces every rule: 100,000 others written whole over
    // the stored ones, three times.
    for (int round = 0; round < 3; ++round) {
      TargetState other = BenchTarget(500, 100000);
      other.name = "big";
      for (policy::Rule& r : other.rules) {
        r.id += static_cast<uint32_t>(100000 * (round + 1));
      }
      StateWrite again{state.next_ruleset, {{"big", &other, RulesDelta{}}}};
      t0 = absl::Now();
      if (auto st = (*store)->Write(again); !st.ok()) return Fail(st);
      printf("state.db: write 100,000 other rules whole over them: %.0f ms\n",
             Ms(t0));
    }
    // The same replacement as an apply writes it since session 27: ahead,
    // beside the compile and off the engine lock; the switch under it; an
    // allow at once (it waits for at most one chunk of the old rows'
    // delete); then the wait for that delete, which no answer waits for.
    for (int round = 0; round < 3; ++round) {
      TargetState other = BenchTarget(500, 100000);
      other.name = "big";
      for (policy::Rule& r : other.rules) {
        r.id += static_cast<uint32_t>(100000 * (round + 4));
      }
      other.next_rule_id = other.rules.back().id + 1;
      t0 = absl::Now();
      if (auto st = (*store)->WriteRulesAhead({&other}); !st.ok()) {
        return Fail(st);
      }
      const double ahead_ms = Ms(t0);
      RulesDelta taken;
      taken.written_ahead = true;
      StateWrite flip{state.next_ruleset, {{"big", &other, taken}}};
      t0 = absl::Now();
      if (auto st = (*store)->Write(flip); !st.ok()) return Fail(st);
      const double switch_ms = Ms(t0);
      TargetState allow = other;
      allow.rules = {BenchRule(other.next_rule_id, 300000)};
      allow.next_rule_id = other.next_rule_id + 1;
      RulesDelta appended{false, {other.next_rule_id}, {}};
      appended.appended_after = other.rules.back().id;
      StateWrite one_allow{state.next_ruleset, {{"big", &allow, appended}}};
      t0 = absl::Now();
      if (auto st = (*store)->Write(one_allow); !st.ok()) return Fail(st);
      const double allow_ms = Ms(t0);
      t0 = absl::Now();
      if (auto st = (*store)->WaitForDeletes(); !st.ok()) return Fail(st);
      printf(
          "state.db: 100,000 other rules written ahead: %.0f ms, switch "
          "%.2f ms, an allow at once %.2f ms, old rows deleted after "
          "%.0f ms\n",
          ahead_ms, switch_ms, allow_ms, Ms(t0));
    }
    if (auto st = (*store)->Write(w); !st.ok()) return Fail(st);
    if (auto st = (*store)->WaitForDeletes(); !st.ok()) return Fail(st);
    DaemonState one;
    one.targets["big"] = big;
    t0 = absl::Now();
    if (auto st = SaveState(dir + "/old1.json", one); !st.ok()) {
      return Fail(st);
    }
    printf(
        "state.json (before): one allow on 100,000 rules saves all: "
        "%.0f ms\n",
        Ms(t0));
    for (int round = 0; round < 3; ++round) {
      TargetState next = big;
      next.rules.push_back(BenchRule(next.next_rule_id++,
                                     200000 + static_cast<uint32_t>(round)));
      t0 = absl::Now();
      RulesDelta d = DiffRules(big.rules, next.rules);
      StateWrite one_allow{state.next_ruleset, {{"big", &next, d}}};
      if (auto st = (*store)->Write(one_allow); !st.ok()) return Fail(st);
      printf(
          "state.db: one allow on 100,000 rules (diff + write): %.2f ms "
          "(%lld rows)\n",
          Ms(t0), static_cast<long long>((*store)->last_write_rows()));
      big = std::move(next);
    }
    // `target remove` of it, and the same name added again at once (as an
    // apply re-creating it writes it): the remove's write is on the answer's
    // path; its rows' delete, since session 28, after it.
    for (int round = 0; round < 3; ++round) {
      StateWrite remove{state.next_ruleset, {{"big", nullptr, std::nullopt}}};
      t0 = absl::Now();
      if (auto st = (*store)->Write(remove); !st.ok()) return Fail(st);
      const double remove_ms = Ms(t0);
      const long long remove_rows = (*store)->last_write_rows();
      StateWrite add{state.next_ruleset, {{"big", &big, RulesDelta{}}}};
      t0 = absl::Now();
      if (auto st = (*store)->Write(add); !st.ok()) return Fail(st);
      const double add_ms = Ms(t0);
      t0 = absl::Now();
      if (auto st = (*store)->WaitForDeletes(); !st.ok()) return Fail(st);
      printf(
          "state.db: remove the 100,000-rule target: %.2f ms (%lld rows), "
          "add it again at once: %.0f ms, its old rows deleted after %.0f "
          "ms\n",
          remove_ms, remove_rows, add_ms, Ms(t0));
    }
  }
  // ---- learned history: 50 targets, 48 hours ----
  auto history = LearnHistory::Open(dir + "/learned.db");
  if (!history.ok()) return Fail(history.status());
  const int64_t now = absl::GetCurrentTimeNanos();
  constexpr int kTargets = 50, kHours = 48, kDests = 200;
  absl::Time t0 = absl::Now();
  for (int h = kHours; h >= 1; --h) {
    for (int t = 0; t < kTargets; ++t) {
      std::vector<policy::Observation> seen;
      for (int d = 0; d < kDests; ++d) {
        policy::Observation o;
        o.family = 4;
        o.addr = {10, static_cast<uint8_t>(t), static_cast<uint8_t>(d / 250),
                  static_cast<uint8_t>(d % 250)};
        o.ip_proto = IPPROTO_TCP;
        o.port = static_cast<uint16_t>(443 + d % 7);
        o.count = 3;
        o.first_seen_ns = now - h * kHour;
        o.last_seen_ns = now - h * kHour + 30 * kSec;
        o.processes = {"worker"};
        seen.push_back(o);
      }
      if (auto st = (*history)->Add(absl::StrCat("t", t), seen,
                                    now - h * kHour + 60 * kSec);
          !st.ok()) {
        return Fail(st);
      }
    }
  }
  printf(
      "learned.db: %d targets x %d hours x %d destinations added in %.0f "
      "ms (%lld rows for t0)\n",
      kTargets, kHours, kDests, Ms(t0),
      static_cast<long long>(*(*history)->Rows("t0")));
  for (int64_t since_h : {2, 24, 48}) {
    t0 = absl::Now();
    auto seen = (*history)->Query("t17", now - since_h * kHour);
    if (!seen.ok()) return Fail(seen.status());
    policy::SuggestOptions opts;
    opts.name = "t17";
    opts.target = {policy::TargetSource::kCgroup, "/t17"};
    auto yaml = policy::SuggestPolicy(*seen, opts);
    if (!yaml.ok()) return Fail(yaml.status());
    printf(
        "suggest --since %lldh on one of 50 targets: %.1f ms (%zu "
        "destinations)\n",
        static_cast<long long>(since_h), Ms(t0), seen->size());
  }
  return 0;
}

}  // namespace
}  // namespace egress

int main() {
  char tmpl[] = "/tmp/egress-store-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  int rc = egress::Run(tmpl);
  egress::RemoveTree(tmpl).IgnoreError();
  return rc;
}
