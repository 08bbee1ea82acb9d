#include "userspace/policy/policy_request.h"

#include "egress/abi.h"
#include "userspace/policy/rule_json.h"

namespace egress::policy {

nlohmann::json PolicyToRequest(const Policy& p) {
  const char* kind = p.target.kind == PolicyTarget::kCgroup ? "cgroup"
                     : p.target.kind == PolicyTarget::kUnit ? "unit"
                                                            : "pattern";
  return {{"name", p.name},
          {"file", p.file},
          {"target_kind", kind},
          {"target", p.target.value},
          {"mode", p.mode == EGRESS_MODE_AUDIT ? "audit" : "enforce"},
          {"logging", p.logging},
          {"rules", RulesToJson(p.rules)}};
}

nlohmann::json ApplyRequest(absl::Span<const Policy> policies, bool dry_run) {
  nlohmann::json list = nlohmann::json::array();
  for (const Policy& p : policies) list.push_back(PolicyToRequest(p));
  return {{"cmd", "apply"}, {"dry_run", dry_run}, {"policies", list}};
}

}  // namespace egress::policy
