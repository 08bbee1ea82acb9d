#include "userspace/daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/rule_json.h"

namespace egress {

absl::StatusOr<uint8_t> ParseMode(const std::string& name) {
  if (name == "enforce") return EGRESS_MODE_ENFORCE;
  if (name == "audit") return EGRESS_MODE_AUDIT;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", name, "': use enforce or audit"));
}

std::string ModeName(uint8_t mode) {
  switch (mode) {
    case EGRESS_MODE_ENFORCE:
      return "enforce";
    case EGRESS_MODE_AUDIT:
      return "audit";
    default:
      return "off";
  }
}

nlohmann::json StateToJson(const DaemonState& state) {
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& [name, t] : state.targets) {
    nlohmann::json rules = nlohmann::json::array();
    for (const policy::Rule& r : t.rules)
      rules.push_back(policy::RuleToJson(r));
    targets.push_back({{"name", t.name},
                       {"id", t.id},
                       {"cgroup", t.cgroup},
                       {"source_kind", t.source_kind},
                       {"source", t.source},
                       {"mode", ModeName(t.mode)},
                       {"ruleset", t.ruleset},
                       {"next_rule_id", t.next_rule_id},
                       {"ephemeral", t.ephemeral},
                       {"log", t.log},
                       {"log", t.log},
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
    ts.source_kind = t["source_kind"].get<std::string>();
    ts.source = t["source"].get<std::string>();
    auto mode = ParseMode(t["mode"].get<std::string>());
    if (!mode.ok())
      return bad(absl::StrCat(where, ".mode: ", mode.status().message()));
    ts.mode = *mode;
    ts.id = t["id"].get<uint32_t>();
    if (ts.id == 0 || ts.id >= EGRESS_MAX_TARGETS) {
      return bad(absl::StrCat(where, ".id: out of range"));
    }
    ts.ruleset = t["ruleset"].get<uint32_t>();
    ts.next_rule_id = t["next_rule_id"].get<uint32_t>();
    ts.ephemeral = t.value("ephemeral", false);
    ts.log = t.value("log", std::string("denied"));
    if (ts.log != "off" && ts.log != "denied" && ts.log != "all") {
      return bad(absl::StrCat(where, ".log: '", ts.log,
                              "' is not off, denied or all"));
    }
    ts.log = t.value("log", std::string("denied"));
    if (ts.log != "off" && ts.log != "denied" && ts.log != "all") {
      return bad(absl::StrCat(where, ".log: '", ts.log,
                              "' is not off, denied or all"));
    }
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
  std::string tmp = absl::StrCat(path, ".tmp");
  std::string data = StateToJson(state).dump(2) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "open", tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "write", tmp);
    }
    off += n;
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, "fsync", tmp);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0)
    return ErrnoStatus(errno, "rename", path);
  return absl::OkStatus();
}

}  // namespace egress
