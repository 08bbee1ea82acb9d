#include "userspace/policy/suggest_names.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/public_suffix.h"

namespace egress::policy {
namespace {

// The parent of `name` if it has at least two labels and is no public
// suffix, else "".
std::string GroupParent(absl::string_view name) {
  const size_t dot = name.find('.');
  if (dot == absl::string_view::npos) return "";
  absl::string_view parent = name.substr(dot + 1);
  if (parent.find('.') == absl::string_view::npos) return "";
  if (IsPublicSuffix(parent)) return "";
  return std::string(parent);
}

}  // namespace

std::map<std::string, std::string> NamePatterns(
    const std::set<std::string>& names, bool group) {
  std::map<std::string, std::string> canonical;  // as learned -> canonical
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '*') continue;  // a name, not a pattern
    absl::StatusOr<std::string> c = CanonicalRuleName(name);
    if (c.ok()) canonical[name] = *c;
  }
  std::map<std::string, int> under;  // parent -> distinct names below it
  if (group) {
    std::set<std::string> distinct;
    for (const auto& [name, c] : canonical) distinct.insert(c);
    for (const std::string& c : distinct) {
      if (std::string parent = GroupParent(c); !parent.empty()) {
        ++under[parent];
      }
    }
  }
  std::map<std::string, std::string> out;
  for (const auto& [name, c] : canonical) {
    std::string parent = group ? GroupParent(c) : "";
    auto it = under.find(parent);
    if (!parent.empty() && it != under.end() && it->second >= 2) {
      absl::StatusOr<std::string> wild =
          CanonicalRuleName(absl::StrCat("*.", parent));
      if (wild.ok()) {
        out[name] = *wild;
        continue;
      }
    }
    out[name] = c;
  }
  return out;
}

}  // namespace egress::policy
