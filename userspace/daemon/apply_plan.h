// The apply planner: policies and the current state in, the plan and the diff
// out. Pure (no kernel, no files), so what `apply` would do is unit-tested
// without root: which targets are created or updated, which rules are added,
// removed or kept, and which ids unchanged rules keep.
#ifndef EGRESS_USERSPACE_DAEMON_APPLY_PLAN_H_
#define EGRESS_USERSPACE_DAEMON_APPLY_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/state.h"

namespace egress {

// A policy of an apply request with its cgroup resolved (relative to the
// cgroup2 mount).
struct ResolvedPolicy {
  control::TargetSpec spec;
  std::string cgroup;  // "" for a user target
  uint32_t uid = 0;    // a user target's
};

struct TargetPlan {
  bool create = false;
  // The target as it will be: name, cgroup, source, mode, logging and the
  // rules with their ids (unchanged rules keep theirs; temporary rules the
  // file does not hold are kept until they end). For an update, id and
  // ruleset are the current ones.
  TargetState target;
  // The rules or the mode differ from what is enforced (a new rule set is
  // needed); false for a re-apply of the same policy.
  bool rules_changed = false;
  // The rules themselves differ (not only the mode): the state writes them
  // again. True for a new target.
  bool rules_differ = false;
  bool config_changed = false;  // mode or logging differ
  // Only the state changes (it keeps them for `export`), not the kernel.
  bool annotations_changed = false;
};

struct ApplyPlan {
  std::vector<TargetPlan> targets;
  std::vector<control::TargetChange> changes;  // the diff, per policy
  // One line per policy that lists a rule more than once: such a rule is
  // kept once (its first listing) and the line says so.
  std::vector<std::string> notes;
};

// `st` (an error) with the place of `spec`'s policy file in front, the way
// the file's own errors read: "web.yaml:7:17: spec.target: " for an error
// about its target (`about_target`, when the CLI sent its position),
// "web.yaml: " otherwise; `st` as it is for a policy from no file.
absl::Status InPolicyFile(const control::TargetSpec& spec,
                          const absl::Status& st, bool about_target);

// InvalidArgument / AlreadyExists naming the policy (and its file, as
// InPolicyFile) for a bad target name, two policies on one cgroup (or uid),
// a cgroup (or uid) that is another target's, or an existing target on
// another cgroup (uid): each is a conflict in what was asked (exit 2).
// = PlanAgainstState, then PlanNewTargets.
absl::StatusOr<ApplyPlan> PlanApply(const DaemonState& state,
                                    std::vector<ResolvedPolicy> policies,
                                    int64_t now);

// PlanApply in two steps, so that a caller that guards `state` with a lock
// holds it for the first only. PlanAgainstState reads the state: the
// conflicts (errors as PlanApply) and the plans of existing targets; a new
// target's plan is left without its rules and their diff lines.
// PlanNewTargets fills those in from `policies` alone, moving each new
// target's rules out of its policy (left without rules): for a fleet's
// first apply, that is every rule, listed. PlanAgainstState moves the
// rules an existing target's plan takes out of its policy the same way
// (what is left there is for no one: a rule listed twice, or none), and
// takes the policy's list itself when it has room for the rules and a
// sixteenth more (a decoded request's has), the repeats left out.
absl::StatusOr<ApplyPlan> PlanAgainstState(
    const DaemonState& state, std::vector<ResolvedPolicy>& policies,
    int64_t now);
void PlanNewTargets(std::vector<ResolvedPolicy>& policies, ApplyPlan& plan);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_APPLY_PLAN_H_
