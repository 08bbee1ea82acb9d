#include "userspace/daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "userspace/common/atomic_file.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/json_archive.h"
#include "userspace/policy/rule_json.h"

namespace egress {

// The members of a target but its rules, once, for writing and reading (a
// new member of TargetState goes here: state.json and the state database
// both follow).
template <typename Io>
void SettingsFields(Io& io, control::Member<TargetState, Io>& t) {
  io.Required("name", t.name);
  io.Required("id", t.id);
  io.Required("cgroup", t.cgroup);
  io.Required("source_kind", t.source);
  io.Required("source", t.source_value);
  // A user target without its uid must not come back as uid 0 (root).
  if (t.source == policy::TargetSource::kUser) io.Required("uid", t.uid);
  io.Required("mode", t.mode);
  io.Required("ruleset", t.ruleset);
  io.Required("next_rule_id", t.next_rule_id);
  io.Field("ephemeral", t.ephemeral);
  io.Field("log", t.logging);  // older files: absent, "denied"
  // Older files and targets without annotations: absent.
  io.FieldIf(!t.annotations.empty(), "annotations", t.annotations);
}

// The members of a target in state.json.
template <typename Io>
void Fields(Io& io, control::Member<TargetState, Io>& t) {
  SettingsFields(io, t);
  io.Required("rules", t.rules);
}

nlohmann::json TargetSettingsToJson(const TargetState& t) {
  control::JsonWriter w;
  SettingsFields(w, t);
  w.Required("rules", std::vector<policy::Rule>{});
  return w.Take();
}

nlohmann::json StateToJson(const DaemonState& state) {
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& [name, t] : state.targets) {
    if (t.orphan) continue;
    targets.push_back(control::JsonWriter::Write(t));
  }
  return {{"version", 1},
          {"next_ruleset", state.next_ruleset},
          {"targets", targets}};
}

absl::StatusOr<DaemonState> StateFromJson(const nlohmann::json& j,
                                          const std::string& file) {
  if (!j.is_object() || !j.contains("targets") || !j.contains("next_ruleset")) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": not an egressd state file (targets or next_ruleset missing)"));
  }
  control::JsonFields fields(j, file + ":");
  control::JsonReader reader(fields);
  DaemonState s;
  std::vector<TargetState> targets;
  reader.Required("next_ruleset", s.next_ruleset);
  reader.Required("targets", targets);
  if (!fields.ok()) return fields.status();
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].id == 0 || targets[i].id >= EGRESS_TARGET_ID_LIMIT) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": targets[", i, "] field 'id' is out of range 1-",
                       EGRESS_TARGET_ID_LIMIT - 1));
    }
    std::string name = targets[i].name;
    s.targets[name] = std::move(targets[i]);
  }
  return s;
}

absl::StatusOr<DaemonState> LoadState(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return DaemonState{};
    return ErrnoStatus(errno, "open state file", path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (absl::StripAsciiWhitespace(ss.str()).empty()) return DaemonState{};
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat(
        "state file ", path,
        " is corrupt (not JSON); egressd will not start "
        "with it: move it away to start empty, or restore a backup"));
  }
  auto state = StateFromJson(j, path);
  if (!state.ok()) {
    return absl::DataLossError(
        absl::StrCat("state file is corrupt: ", state.status().message()));
  }
  return state;
}

absl::Status SaveState(const std::string& path, const DaemonState& state) {
  return WriteFileAtomically(path,
                             policy::JsonText(StateToJson(state), 2) + "\n");
}

}  // namespace egress
