// egressd's persistent state: targets and their rules, written atomically to
// <state-dir>/state.json. The BPF maps are rebuilt from it at start, so a
// reboot (pins gone) restores the same enforcement.
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

namespace egress {

// "enforce" / "audit" <-> EGRESS_MODE_*. InvalidArgument names the word.
absl::StatusOr<uint8_t> ParseMode(const std::string& name);
std::string ModeName(uint8_t mode);

struct TargetState {
  std::string name;
  uint32_t id = 0;          // index into the targets map, > 0
  std::string cgroup;       // relative to the cgroup2 mount: "/system.slice/x"
  std::string source_kind;  // "cgroup", "unit" or "pid": how it was named
  std::string source;       // the unit name or pid as given
  uint8_t mode = 0;         // EGRESS_MODE_ENFORCE / _AUDIT
  uint32_t ruleset = 0;     // active ruleset id in the maps (0 = none)
  uint32_t next_rule_id = 1;
  bool ephemeral = false;      // created by `egressctl run`; removed with it
  std::string log = "denied";  // verdict records: "off", "denied", "all"
  std::vector<policy::Rule> rules;
};

struct DaemonState {
  uint32_t next_ruleset = 1;
  std::map<std::string, TargetState> targets;  // by name
};

nlohmann::json StateToJson(const DaemonState& state);
// InvalidArgument naming the field and the file when the content is bad.
absl::StatusOr<DaemonState> StateFromJson(const nlohmann::json& j,
                                          const std::string& file);

// Missing file: empty state. Corrupt file: DataLoss naming the file (egressd
// refuses to start rather than silently dropping the policy).
absl::StatusOr<DaemonState> LoadState(const std::string& path);
// Writes to a temporary file, fsyncs it and renames it over `path`.
absl::Status SaveState(const std::string& path, const DaemonState& state);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_STATE_H_
