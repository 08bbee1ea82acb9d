// What one change writes to egressd's state: the targets it touched, and of
// each target's rules only the ones that changed, so that one `allow` on a
// target of 100,000 rules writes one rule, not the whole state. The engine
// makes these; the store (state_store.h) and the tests' fake apply them.
#ifndef EGRESS_USERSPACE_DAEMON_STATE_WRITE_H_
#define EGRESS_USERSPACE_DAEMON_STATE_WRITE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "userspace/daemon/state.h"
#include "userspace/policy/rule.h"

namespace egress {

// Which of a target's rules a write carries. Rules are known by their id
// (never reused within a target).
struct RulesDelta {
  // Every rule is written again (a new target, an applied policy, or an
  // order that changed).
  bool all = true;
  // Otherwise: ids of rules new or changed (their content and place are in
  // the target's `rules`), and ids of rules gone.
  std::vector<uint32_t> put;
  std::vector<uint32_t> removed;
  // Set when the change only added rules at the end (an `allow`): the
  // target's `rules` in the write then hold just those (`put` names them),
  // after the stored rule of this id (0: the target had none). The change
  // copies none of the rules it keeps, and the store finds the new rows'
  // place without a pass over them.
  std::optional<uint32_t> appended_after;
  // With `all`, for a target not stored yet: the rows of these very rules
  // were stored ahead of this write (StateStore::WriteRulesAhead, while an
  // apply compiled them), so the write adds the target's row and takes
  // them. A store that holds no such rows writes them all, as without it.
  bool written_ahead = false;
};

struct TargetWrite {
  std::string name;
  // The target as it is after the change; nullptr when it was removed.
  const TargetState* target = nullptr;
  // nullopt: its rules did not change (a mode, a logging level).
  std::optional<RulesDelta> rules;
};

struct StateWrite {
  uint32_t next_ruleset = 0;
  std::vector<TargetWrite> targets;
};

// The delta from `before` to `after`: the rules of `after` that are new or
// differ from the rule of the same id in `before`, and the ids of `before`
// that `after` lacks. `all` when the rules both hold come in another order
// (or the write would be most of the rules anyway).
RulesDelta DiffRules(const std::vector<policy::Rule>& before,
                     const std::vector<policy::Rule>& after);

// Applies `write` to `state` (each written target copied whole): what the
// store would load afterwards. For tests and fakes.
void ApplyStateWrite(const StateWrite& write, DaemonState* state);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_STATE_WRITE_H_
