#include "userspace/policy/name_rules.h"

#include <cstring>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/dns/domain_name.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

absl::StatusOr<std::string> CanonicalRuleName(absl::string_view text) {
  EGRESS_ASSIGN_OR_RETURN(dns::DomainPattern p,
                          dns::DomainPattern::Parse(text));
  std::string canonical = p.ToString();
  if (canonical.size() > EGRESS_DNS_MAX_RULE_NAME) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name '", text, "' is longer than ", EGRESS_DNS_MAX_RULE_NAME,
        " characters, the longest a name rule can hold"));
  }
  return canonical;
}

absl::StatusOr<std::string> CanonicalNewRuleName(absl::string_view text) {
  EGRESS_ASSIGN_OR_RETURN(std::string canonical, CanonicalRuleName(text));
  EGRESS_RETURN_IF_ERROR(dns::CheckNotAddressLike(canonical));
  return canonical;
}

uint64_t NamePatternId(absl::string_view canonical) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : canonical) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h == 0 ? 1 : h;
}

std::pair<egress_dns_name_key, egress_dns_name_value> NameEntry(
    uint32_t ruleset, absl::string_view canonical) {
  egress_dns_name_key k{};
  k.ruleset = ruleset;
  const bool wildcard = absl::StartsWith(canonical, "*.");
  // "*.example.com" keys "moc.elpmaxe." (the dot included: strictly below);
  // "api.example.com" keys "moc.elpmaxe.ipa" and its NUL (exactly).
  const absl::string_view body = wildcard ? canonical.substr(1) : canonical;
  size_t n = 0;
  for (size_t i = body.size(); i > 0 && n < sizeof(k.name); --i) {
    k.name[n++] = body[i - 1];
  }
  const size_t bytes = wildcard ? n : n + 1;  // the NUL is zero already
  k.prefixlen =
      EGRESS_DNS_NAME_KEY_FIXED_BITS + 8 * static_cast<uint32_t>(bytes);
  egress_dns_name_value v{};
  v.pattern = NamePatternId(canonical);
  v.prefixlen = k.prefixlen;
  return {k, v};
}

std::vector<std::pair<egress_dns_name_key, egress_dns_name_value>>
CompileNameEntries(uint32_t ruleset, absl::Span<const Rule> rules) {
  std::set<std::string> seen;
  std::vector<std::pair<egress_dns_name_key, egress_dns_name_value>> out;
  for (const Rule& rule : rules) {
    for (const std::string& name : rule.names) {
      if (seen.insert(name).second) out.push_back(NameEntry(ruleset, name));
    }
  }
  return out;
}

}  // namespace egress::policy
