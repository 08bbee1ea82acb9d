#include "userspace/policy/policy_request.h"

#include "userspace/policy/rule_json.h"

namespace egress::policy {

nlohmann::json PolicyToRequest(const Policy& p) {
  return {{"name", p.name},
          {"file", p.file},
          {"target_kind", TargetSourceName(p.target.kind)},
          {"target", p.target.value},
          {"mode", ModeName(p.mode)},
          {"logging", LoggingLevelName(p.logging)},
          {"rules", RulesToJson(p.rules)}};
}

nlohmann::json ApplyRequest(absl::Span<const Policy> policies, bool dry_run) {
  nlohmann::json list = nlohmann::json::array();
  for (const Policy& p : policies) list.push_back(PolicyToRequest(p));
  return {{"cmd", "apply"}, {"dry_run", dry_run}, {"policies", list}};
}

}  // namespace egress::policy
