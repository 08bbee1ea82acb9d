// Which rule name a DNS name learned in audit mode goes under in a suggested
// policy (`egressctl suggest`, `--group-names`). Pure logic.
#ifndef EGRESS_USERSPACE_POLICY_SUGGEST_NAMES_H_
#define EGRESS_USERSPACE_POLICY_SUGGEST_NAMES_H_

#include <map>
#include <set>
#include <string>

namespace egress::policy {

// Each name of `names` mapped to the rule name that allows it:
//   - by default, itself (exact names: least privilege);
//   - with `group`, "*.PARENT" for every name whose parent domain PARENT
//     (the name without its first label) has at least two labels, is not a
//     public suffix (public_suffix.h: "co.uk", "github.io", where anyone
//     registers names) and is the parent of at least two of `names`
//     ("a.cdn.example" and "b.cdn.example" -> "*.cdn.example"); a name alone
//     under its parent stays exact, and no wildcard is ever made directly
//     under a top-level domain ("*.com") or any other public suffix.
// Names CanonicalRuleName (name_rules.h) refuses are left out: their
// destinations are allowed by address instead. Patterns are canonical
// (lower case, no trailing dot).
std::map<std::string, std::string> NamePatterns(
    const std::set<std::string>& names, bool group);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_SUGGEST_NAMES_H_
