#include "userspace/dns/domain_name.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::dns {
namespace {

bool NameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '_';
}

absl::Status Bad(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad domain name \"", name, "\": ", why));
}

// Why `name` (no trailing dot) is not valid, or OK. Messages quote
// `shown`: what the user wrote, of which `name` may be a part.
absl::Status CheckLabels(absl::string_view name, absl::string_view shown) {
  if (name.empty()) return Bad(shown, "empty");
  if (name.size() > kDomainNameMaxChars) {
    return Bad(shown, absl::StrCat("longer than ", kDomainNameMaxChars,
                                   " characters"));
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return Bad(shown, "empty label");
    if (label.size() > kDomainLabelMaxChars) {
      return Bad(shown, absl::StrCat("label longer than ", kDomainLabelMaxChars,
                                     " characters"));
    }
    if (!std::all_of(label.begin(), label.end(), NameChar)) {
      return Bad(shown, "use letters, digits, '-' and '_' between dots");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> NormalizeDomainName(absl::string_view name) {
  absl::string_view bare = name;
  absl::ConsumeSuffix(&bare, ".");
  if (absl::Status s = CheckLabels(bare, bare); !s.ok()) return s;
  return absl::AsciiStrToLower(bare);
}

absl::StatusOr<DomainPattern> DomainPattern::Parse(absl::string_view text) {
  absl::string_view rest = text;
  const bool wildcard = absl::ConsumePrefix(&rest, "*.");
  // A '*' past the leading "*." ("*.*.example.com", "a*.example.com"):
  // said as such, of the whole pattern, not as a bad character of the name
  // after the "*." the user did not write on its own.
  if (absl::StrContains(rest, '*')) {
    return Bad(text, "'*' stands only as the whole first label (*.NAME)");
  }
  absl::string_view bare = rest;
  absl::ConsumeSuffix(&bare, ".");
  if (absl::Status s = CheckLabels(bare, text); !s.ok()) return s;
  return DomainPattern(wildcard, absl::AsciiStrToLower(bare));
}

bool DomainPattern::Matches(absl::string_view name) const {
  absl::StatusOr<std::string> normal = NormalizeDomainName(name);
  if (!normal.ok()) return false;
  if (!wildcard_) return *normal == domain_;
  return absl::EndsWith(*normal, absl::StrCat(".", domain_));
}

std::string DomainPattern::ToString() const {
  return wildcard_ ? absl::StrCat("*.", domain_) : domain_;
}

absl::Status CheckNotAddressLike(absl::string_view name) {
  // No top-level domain starts with a digit, while every IPv4 address and
  // the ranges people write for them ("10.0.0.1-10.0.0.5", "192.0.2.0-255")
  // pass the label checks. Taken as a name, such a rule would wait for DNS
  // answers that never come instead of covering the addresses meant.
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  const absl::string_view last = name.substr(name.rfind('.') + 1);  // npos+1=0
  if (!last.empty() &&
      absl::ascii_isdigit(static_cast<unsigned char>(last.front()))) {
    return Bad(name,
               "it looks like an address or address range, not a name (no "
               "top-level domain starts with a digit); give an address or "
               "CIDR network instead, a range as the networks that cover it: "
               "on the command line as the destination itself (192.0.2.0/24), "
               "in a policy file under ipBlock.cidr");
  }
  return absl::OkStatus();
}

}  // namespace egress::dns
