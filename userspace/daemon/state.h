// egressd's persistent state: targets and their rules. Kept in the state
// database (state_store.h); the JSON form here is the one of the state.json
// file egressd used before, which the store imports once. The BPF maps are
// rebuilt from the state at start, so a reboot (pins gone) restores the same
// enforcement.
#ifndef EGRESS_USERSPACE_DAEMON_STATE_H_
#define EGRESS_USERSPACE_DAEMON_STATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/rule.h"
#include "userspace/policy/vocabulary.h"

namespace egress {

struct TargetState {
  std::string name;
  uint32_t id = 0;     // index into the targets map, > 0
  std::string cgroup;  // relative to the cgroup2 mount: "/system.slice/x"
                       // ("" for a user target)
  // A user target's uid, resolved once when it was added (never looked up
  // again: a restart needs no passwd database).
  uint32_t uid = 0;
  // How the operator named it, and the unit, pid, path, glob or user as
  // given.
  policy::TargetSource source = policy::TargetSource::kCgroup;
  std::string source_value;
  policy::Mode mode = policy::Mode::kEnforce;
  uint32_t ruleset = 0;  // active ruleset id in the maps (0 = none)
  uint32_t next_rule_id = 1;
  bool ephemeral = false;  // created by `egressctl run`; removed with it
  policy::LoggingLevel logging = policy::LoggingLevel::kDenied;
  std::vector<policy::Rule> rules;
  // The metadata.annotations of the policy file last applied to it, written
  // back by `export`.
  std::map<std::string, std::string> annotations;
  // A program set found pinned at start that the state does not hold (the
  // state file was lost): enforced as it was, its rules unknown. Never
  // saved: each start finds it again while its pins last.
  bool orphan = false;
};

struct DaemonState {
  uint32_t next_ruleset = 1;
  std::map<std::string, TargetState> targets;  // by name
};

// Copies what the operator says of a target (its name, how it names its
// cgroup, mode, logging, whether `egressctl run` made it) between the
// request's spec, the state and the status that share these fields.
template <typename From, typename To>
void CopyTargetSettings(const From& from, To* to) {
  to->name = from.name;
  to->source = from.source;
  to->source_value = from.source_value;
  to->mode = from.mode;
  to->logging = from.logging;
  to->ephemeral = from.ephemeral;
}

// The target whose cgroup is a pattern (one program set, many cgroups).
inline bool IsPattern(const TargetState& t) {
  return t.source == policy::TargetSource::kPattern;
}
// The target of a user's processes (no cgroup, no program set of its own).
inline bool IsUser(const TargetState& t) {
  return t.source == policy::TargetSource::kUser;
}
// The target of containers (by name or labels): its cgroups are those of
// the containers it selects now (EngineOptions::workload_cgroups); its
// `cgroup` is "".
inline bool IsWorkload(const TargetState& t) {
  return policy::IsWorkloadSource(t.source);
}
// One program set attached to many cgroups, one link set per cgroup.
inline bool HasCgroupSet(const TargetState& t) {
  return IsPattern(t) || IsWorkload(t);
}

// A target's members in state.json without its rules (what the state
// database keeps per target; its rules are rows of their own).
nlohmann::json TargetSettingsToJson(const TargetState& t);

// Orphans are left out: the file holds only what egressd knows.
nlohmann::json StateToJson(const DaemonState& state);
// InvalidArgument naming the field and the file when the content is bad.
absl::StatusOr<DaemonState> StateFromJson(const nlohmann::json& j,
                                          const std::string& file);

// Missing or empty file (nothing but white space): empty state; pins that
// it does not name are adopted as orphans (Engine::Start). Corrupt file:
// DataLoss naming the file (egressd refuses to start rather than silently
// dropping the policy).
absl::StatusOr<DaemonState> LoadState(const std::string& path);
// Writes to a temporary file, fsyncs it and renames it over `path`.
absl::Status SaveState(const std::string& path, const DaemonState& state);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_STATE_H_
