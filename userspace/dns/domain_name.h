// Domain names as rules write them, and how a rule's name matches the name
// a DNS answer was for.
//
// A valid name: 1 to 253 characters; labels of 1 to 63 letters, digits, '-'
// or '_' joined by '.'. The alphabet is the one the answer parser accepts in
// names (DnsReason::kNameChar), so every name an answer can bind can be
// written as a rule and no rule names what no answer can bind. '_' is in it
// because real host names carry it (service labels, some internal and CDN
// names); '-' may stand anywhere in a label, as names in the wild have it.
// Names are case-insensitive: kept in lower case. One trailing dot (the
// fully qualified form) is accepted and dropped.
#ifndef EGRESS_USERSPACE_DNS_DOMAIN_NAME_H_
#define EGRESS_USERSPACE_DNS_DOMAIN_NAME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::dns {

inline constexpr size_t kDomainNameMaxChars = 253;
inline constexpr size_t kDomainLabelMaxChars = 63;

// The name in lower case without a trailing dot. InvalidArgument, naming the
// name and the problem, when it is not valid (see above).
absl::StatusOr<std::string> NormalizeDomainName(absl::string_view name);

// InvalidArgument, saying where addresses go, when the last label of `name`
// (a name or a "*." pattern) starts with a digit: no top-level domain does,
// so "10.0.0.5" or "192.0.2.0-255" is an address or a range written where a
// name goes. For rules as a user writes them (policy::CanonicalNewRuleName);
// rules stored by an older egressd may hold such a name, which matches no
// answer and must not stop them from loading.
absl::Status CheckNotAddressLike(absl::string_view name);

// A rule's name: exact ("api.example.com") or wildcard ("*.example.com",
// any name strictly below example.com: a.example.com and a.b.example.com,
// not example.com itself). '*' stands only as the whole first label.
class DomainPattern {
 public:
  // InvalidArgument for anything but a valid name, optionally behind "*.".
  static absl::StatusOr<DomainPattern> Parse(absl::string_view text);

  // True when `name` (any case, a trailing dot allowed) is valid and the
  // pattern covers it.
  bool Matches(absl::string_view name) const;

  bool wildcard() const { return wildcard_; }
  // The name, or for a wildcard the name below which it matches.
  const std::string& domain() const { return domain_; }
  // As written back: "api.example.com" or "*.example.com".
  std::string ToString() const;

 private:
  DomainPattern(bool wildcard, std::string domain)
      : wildcard_(wildcard), domain_(std::move(domain)) {}

  bool wildcard_;
  std::string domain_;
};

}  // namespace egress::dns

#endif  // EGRESS_USERSPACE_DNS_DOMAIN_NAME_H_
