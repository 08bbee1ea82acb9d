// Fuzz target: a policy file's bytes -> ParsePolicy, the parser egressd
// (--policy_dir, apply) and egressctl (apply -f) use. Beyond not crashing,
// not leaking and finishing in bounded time (libFuzzer's -timeout and
// -rss_limit_mb), a policy that parses must survive WritePolicy: the text it
// writes parses back to the same name, target, mode, logging, annotations
// and, rule by rule, the same rule (RuleIdentity: action, ports, destinations,
// unix addresses) with the same name. That is WritePolicy's contract
// (policy_writer.h) and what `egressctl export` + `apply -f` rely on.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/fuzz/targets/fuzz_check.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule_compare.h"

namespace egress::policy {
namespace {

PolicyDocument DocumentOf(const Policy& p) {
  PolicyDocument doc;
  doc.name = p.name;
  doc.target = p.target;
  doc.mode = p.mode;
  doc.logging = p.logging;
  doc.annotations = p.annotations;
  doc.rules = p.rules;
  for (const RuleOrigin& origin : p.origins) {
    doc.rule_names.push_back(origin.name);
  }
  return doc;
}

void CheckRewrite(const Policy& first) {
  const std::string text = WritePolicy(DocumentOf(first));
  absl::StatusOr<Policy> again = ParsePolicy(text, "rewritten.yaml");
  FUZZ_CHECK(again.ok(), absl::StrCat(again.status().ToString(), "\n", text));
  FUZZ_CHECK(again->name == first.name, text);
  FUZZ_CHECK(again->target == first.target, text);
  FUZZ_CHECK(again->mode == first.mode, text);
  FUZZ_CHECK(again->logging == first.logging, text);
  FUZZ_CHECK(again->annotations == first.annotations, text);
  FUZZ_CHECK(again->rules.size() == first.rules.size(), text);
  for (size_t i = 0; i < first.rules.size(); ++i) {
    FUZZ_CHECK(
        RuleIdentity(again->rules[i]) == RuleIdentity(first.rules[i]),
        absl::StrCat("rule ", i, ": ", RuleIdentity(first.rules[i]), " became ",
                     RuleIdentity(again->rules[i]), "\n", text));
    FUZZ_CHECK(again->origins[i].name == first.origins[i].name, text);
  }
}

}  // namespace
}  // namespace egress::policy

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<egress::policy::Policy> policy =
      egress::policy::ParsePolicy(text, "fuzz.yaml");
  if (policy.ok()) egress::policy::CheckRewrite(*policy);
  return 0;
}
