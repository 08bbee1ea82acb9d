// The engine tests' fixture: an Engine over a FakeKernel with /web and /db,
// a state "file" in memory that can be made to fail, and rule builders.
#ifndef EGRESS_TESTS_UNIT_ENGINE_FIXTURE_H_
#define EGRESS_TESTS_UNIT_ENGINE_FIXTURE_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/fake_kernel.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/state_write.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/spec.h"

namespace egress::testing {

inline policy::Rule R(policy::Action action, std::vector<std::string> words) {
  auto r = policy::ParseRuleWords(action, words);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : policy::Rule{};
}
inline policy::Rule Allow(std::vector<std::string> w) {
  return R(policy::Action::kAllow, std::move(w));
}
inline policy::Rule Deny(std::vector<std::string> w) {
  return R(policy::Action::kDeny, std::move(w));
}

// One allow rule to `hosts` /32s in 10.<net>.x.y on https.
inline policy::Rule Hosts(int net, int hosts) {
  std::vector<std::string> words = {"https"};
  for (int i = 0; i < hosts; ++i) {
    words.push_back(absl::StrCat("10.", net, ".", i / 250, ".", i % 250 + 1));
  }
  return Allow(words);
}

// The entries of rule `r` in the rules map when compiled with no room in
// exact_rules (the tries alone, as a restart near full maps compiles).
inline size_t EntriesOf(policy::Rule r) {
  r.id = 1;
  auto c = policy::Compile(1, {r}, 0);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->rules.size() : 0;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.MakeCgroup("/web");
    kernel_.MakeCgroup("/db");
    engine_ = std::make_unique<Engine>(kernel_, DaemonState{}, Options());
    ASSERT_OK(engine_->Start(kNow).status());
  }

  // Makes the engine again (the fake kernel stays) from `state`, with a
  // rules map of `capacity` entries and no room in exact_rules: every set
  // stays in the tries, whose room the room tests fill
  // (Engine::ExactLimitLocked). `tune` adjusts the options further.
  void RestartWithRuleRoom(
      size_t capacity, const DaemonState& state,
      const std::function<void(EngineOptions&)>& tune = nullptr) {
    kernel_.SetRuleCapacity(capacity);
    EngineOptions o = Options();
    o.map_capacity.rules = capacity;
    o.map_capacity.exact = 0;
    if (tune) tune(o);
    engine_.reset();
    engine_ = std::make_unique<Engine>(kernel_, state, o);
    ASSERT_OK(engine_->Start(kNow).status());
  }

  EngineOptions Options() {
    EngineOptions o;
    o.save = [this](const StateWrite& w) {
      if (fail_save_) return absl::UnavailableError("disk full");
      ApplyStateWrite(w, &saved_);
      last_write_ = w;
      ++saves_;
      return absl::OkStatus();
    };
    o.unit_cgroup = [](const std::string& unit) -> absl::StatusOr<std::string> {
      return "/system.slice/" + unit;
    };
    o.pid_cgroup = [](int) -> absl::StatusOr<std::string> { return "/web"; };
    o.user_uid = [](const std::string& name) -> absl::StatusOr<uint32_t> {
      if (name == "www-data") return 33;
      return absl::NotFoundError("no user named '" + name + "'");
    };
    o.normalize_cgroup =
        [](const std::string& p) -> absl::StatusOr<std::string> {
      if (p.empty() || p[0] != '/') return absl::InvalidArgumentError(p);
      return p;
    };
    return o;
  }

  control::TargetSpec Spec(const std::string& name, const std::string& cgroup,
                           std::vector<policy::Rule> rules) {
    control::TargetSpec s;
    s.name = name;
    s.source_value = cgroup;
    s.rules = std::move(rules);
    return s;
  }

  control::TargetSpec UserSpec(const std::string& name, const std::string& user,
                               std::vector<policy::Rule> rules = {}) {
    control::TargetSpec s = Spec(name, user, std::move(rules));
    s.source = policy::TargetSource::kUser;
    return s;
  }

  const TargetState& Saved(const std::string& name) {
    return saved_.targets.at(name);
  }
  uint32_t IdOf(const std::string& name) { return Saved(name).id; }

  static constexpr int64_t kNow = 1'000'000;
  FakeKernel kernel_;
  std::unique_ptr<Engine> engine_;
  DaemonState saved_;
  // The last write (its target pointers are not to be followed after it).
  StateWrite last_write_;
  int saves_ = 0;
  bool fail_save_ = false;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_UNIT_ENGINE_FIXTURE_H_
