// One rule at a time: `egressctl allow|deny ...` and `egressctl delete`.
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/engine.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

constexpr int64_t kMaxTemporarySeconds = int64_t{10} * 365 * 86400;

// The warning for an allow that a deny of the same target covers whole.
std::string ShadowWarning(const std::vector<policy::Rule>& rules,
                          const policy::Rule& allow) {
  if (allow.action != policy::Action::kAllow) return "";
  std::optional<size_t> deny = policy::ShadowingDeny(rules, allow);
  if (!deny) return "";
  return absl::StrCat(
      "this allow is shadowed by rule ", *deny + 1, " (",
      policy::FormatRule(rules[*deny]),
      "), which denies all of it: deny beats allow, so it has no effect; "
      "'egressctl delete ",
      *deny + 1, "' first if it should");
}

// The warnings for a deny that covers allows of the same target whole:
// each of them stops letting anything through, which the person adding
// the deny should hear as much as one adding an allow after a deny. At most
// kShown allows are named; a target may hold 100,000 rules.
std::vector<std::string> ShadowedWarnings(
    const std::vector<policy::Rule>& rules, const policy::Rule& deny) {
  std::vector<std::string> out;
  if (deny.action != policy::Action::kDeny) return out;
  constexpr size_t kShown = 5;
  size_t more = 0;
  const absl::Span<const policy::Rule> just_this(&deny, 1);
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].action != policy::Action::kAllow) continue;
    if (!policy::ShadowingDeny(just_this, rules[i])) continue;
    if (out.size() == kShown) {
      ++more;
      continue;
    }
    out.push_back(absl::StrCat(
        "this deny shadows rule ", i + 1, " (", policy::FormatRule(rules[i]),
        "), denying all of it: deny beats allow, so that allow no longer has "
        "any effect; 'egressctl delete ",
        i + 1, "' if it is not wanted"));
  }
  if (more > 0) {
    out.push_back(absl::StrCat("this deny also shadows ", more,
                               " more allow rules ('egressctl list' shows "
                               "them)"));
  }
  return out;
}

}  // namespace

absl::StatusOr<control::RuleAddResponse> Engine::AddRule(
    const control::RuleAddRequest& request, int64_t now) {
  policy::Rule rule = request.rule;
  rule.id = 0;
  rule.expires = 0;
  if (request.for_seconds) {
    if (*request.for_seconds <= 0 ||
        *request.for_seconds > kMaxTemporarySeconds) {
      return absl::InvalidArgumentError(
          "for_seconds must be a number of seconds, 1 to 10 years");
    }
    rule.expires = now + *request.for_seconds;
  }
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(request.target));
  EGRESS_RETURN_IF_ERROR(CheckEnforced(*t));
  control::RuleAddResponse out;
  out.target = t->name;
  const policy::SameRuleAs same(rule);
  for (size_t i = 0; i < t->rules.size(); ++i) {
    policy::Rule& kept = t->rules[i];
    if (!same(kept)) continue;
    out.number = i + 1;
    // The same rule again (in any spelling): a permanent one stays; a
    // temporary one lives until the later of both ends (forever if the new
    // one is permanent).
    if (kept.expires != 0 &&
        (rule.expires == 0 || rule.expires > kept.expires)) {
      if (request.dry_run) {
        policy::Rule later = kept;
        later.expires = rule.expires;
        out.rule = policy::FormatRule(later);
        out.expires = later.expires;
        out.extended = true;
        out.dry_run = true;
        return out;
      }
      int64_t before = kept.expires;
      kept.expires = rule.expires;
      if (absl::Status st = SaveLocked(
              lock, {WriteOf(t->name, RulesDelta{false, {kept.id}, {}})});
          !st.ok()) {
        kept.expires = before;
        return st;
      }
      out.rule = policy::FormatRule(kept);
      out.expires = kept.expires;
      out.extended = true;
      return out;
    }
    out.skipped = true;
    out.message = absl::StrCat("skipping adding existing rule (",
                               policy::FormatRule(kept), ")");
    return out;
  }
  std::string warning = ShadowWarning(t->rules, rule);
  std::vector<std::string> shadowed = ShadowedWarnings(t->rules, rule);
  if (request.dry_run) {
    out.number = t->rules.size() + 1;
    out.rule = policy::FormatRule(rule);
    out.expires = rule.expires;
    out.dry_run = true;
    if (!warning.empty()) out.warnings.push_back(warning);
    for (std::string& w : shadowed) out.warnings.push_back(std::move(w));
    return out;
  }
  rule.id = t->next_rule_id++;
  const std::string name = t->name;
  lock.unlock();
  // Appended, not copied with the target's other rules.
  if (absl::Status st = AppendRule(name, rule); !st.ok()) {
    return st;  // the id stays used: ids are never reused anyway
  }
  lock.lock();
  EGRESS_ASSIGN_OR_RETURN(t, Find(name));
  out.number = t->rules.size();
  out.rule = policy::FormatRule(rule);
  out.expires = rule.expires;
  if (!warning.empty()) out.warnings.push_back(warning);
  for (std::string& w : shadowed) out.warnings.push_back(std::move(w));
  return out;
}

absl::StatusOr<control::RuleDeleteResponse> Engine::DeleteRule(
    const control::RuleDeleteRequest& request) {
  Lock lock(mu_);
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, Find(request.target));
  EGRESS_RETURN_IF_ERROR(CheckEnforced(*t));
  size_t index = 0;
  if (request.number) {
    size_t n = *request.number;
    if (n == 0 || n > t->rules.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no rule number ", n, " in target '", t->name, "' (it has ",
          t->rules.size(), " rules; see 'egressctl list')"));
    }
    index = n - 1;
  } else if (request.rule) {
    index = t->rules.size();
    const policy::SameRuleAs same(*request.rule);
    for (size_t i = 0; i < t->rules.size(); ++i) {
      if (same(t->rules[i])) index = i;
    }
    if (index == t->rules.size()) {
      return absl::NotFoundError(
          absl::StrCat("no such rule in target '", t->name,
                       "': ", policy::FormatRule(*request.rule)));
    }
  } else {
    return absl::InvalidArgumentError("delete needs a rule number or a rule");
  }
  if (request.dry_run) {
    control::RuleDeleteResponse out{t->name,
                                    policy::FormatRule(t->rules[index])};
    out.dry_run = true;
    return out;
  }
  std::vector<policy::Rule> rules = t->rules;
  policy::Rule removed = rules[index];
  rules.erase(rules.begin() + index);
  const std::string name = t->name;
  lock.unlock();
  EGRESS_RETURN_IF_ERROR(ReplaceRules(name, std::move(rules), std::nullopt));
  return control::RuleDeleteResponse{name, policy::FormatRule(removed)};
}

}  // namespace egress
