#include "userspace/daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "userspace/common/atomic_file.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/rule_json.h"

namespace egress {

nlohmann::json StateToJson(const DaemonState& state) {
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& [name, t] : state.targets) {
    nlohmann::json rules = nlohmann::json::array();
    for (const policy::Rule& r : t.rules)
      rules.push_back(policy::RuleToJson(r));
    targets.push_back({{"name", t.name},
                       {"id", t.id},
                       {"cgroup", t.cgroup},
                       {"source_kind", policy::TargetSourceName(t.source)},
                       {"source", t.source_value},
                       {"mode", policy::ModeName(t.mode)},
                       {"ruleset", t.ruleset},
                       {"next_rule_id", t.next_rule_id},
                       {"ephemeral", t.ephemeral},
                       {"log", policy::LoggingLevelName(t.logging)},
                       {"rules", rules}});
  }
  return {{"version", 1},
          {"next_ruleset", state.next_ruleset},
          {"targets", targets}};
}

absl::StatusOr<DaemonState> StateFromJson(const nlohmann::json& j,
                                          const std::string& file) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
  };
  if (!j.is_object() || !j.contains("targets") || !j["targets"].is_array() ||
      !j.contains("next_ruleset") || !j["next_ruleset"].is_number_unsigned()) {
    return bad("not an egressd state file (targets or next_ruleset missing)");
  }
  DaemonState s;
  s.next_ruleset = j["next_ruleset"].get<uint32_t>();
  size_t i = 0;
  for (const nlohmann::json& t : j["targets"]) {
    std::string where = absl::StrCat("targets[", i++, "]");
    TargetState ts;
    for (const char* f : {"name", "cgroup", "source_kind", "source", "mode"}) {
      if (!t.contains(f) || !t[f].is_string()) {
        return bad(absl::StrCat(where, ".", f, ": missing or not a string"));
      }
    }
    for (const char* f : {"id", "ruleset", "next_rule_id"}) {
      if (!t.contains(f) || !t[f].is_number_unsigned()) {
        return bad(absl::StrCat(where, ".", f, ": missing or not a number"));
      }
    }
    ts.name = t["name"].get<std::string>();
    ts.cgroup = t["cgroup"].get<std::string>();
    ts.source_value = t["source"].get<std::string>();
    auto source =
        policy::ParseTargetSource(t["source_kind"].get<std::string>());
    auto mode = policy::ParseMode(t["mode"].get<std::string>());
    auto logging = policy::ParseLoggingLevel(
        t.contains("log") && t["log"].is_string() ? t["log"].get<std::string>()
                                                  : "denied");
    for (const auto& [field, status] :
         {std::pair{"source_kind", source.status()},
          std::pair{"mode", mode.status()},
          std::pair{"log", logging.status()}}) {
      if (!status.ok()) {
        return bad(absl::StrCat(where, ".", field, ": ", status.message()));
      }
    }
    ts.source = *source;
    ts.mode = *mode;
    ts.logging = *logging;
    ts.id = t["id"].get<uint32_t>();
    if (ts.id == 0 || ts.id >= EGRESS_MAX_TARGETS) {
      return bad(absl::StrCat(where, ".id: out of range"));
    }
    ts.ruleset = t["ruleset"].get<uint32_t>();
    ts.next_rule_id = t["next_rule_id"].get<uint32_t>();
    ts.ephemeral = t.value("ephemeral", false);
    if (!t.contains("rules") || !t["rules"].is_array()) {
      return bad(absl::StrCat(where, ".rules: missing or not a list"));
    }
    size_t k = 0;
    for (const nlohmann::json& r : t["rules"]) {
      auto rule = policy::RuleFromJson(r);
      if (!rule.ok()) {
        return bad(
            absl::StrCat(where, ".rules[", k, "]: ", rule.status().message()));
      }
      ts.rules.push_back(*std::move(rule));
      ++k;
    }
    s.targets[ts.name] = std::move(ts);
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
