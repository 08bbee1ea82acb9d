// Whether a domain is a public suffix: a name under which anyone may register
// names of their own, from the ICANN section of the Public Suffix List
// ("com", "co.uk") or its private one ("github.io", "herokuapp.com"). A
// wildcard rule over such a suffix would allow everybody's names, so
// `suggest --group-names` never makes one. Backed by libpsl with the newest
// list on the host (Debian's publicsuffix package, else libpsl's built-in
// copy).
#ifndef EGRESS_USERSPACE_POLICY_PUBLIC_SUFFIX_H_
#define EGRESS_USERSPACE_POLICY_PUBLIC_SUFFIX_H_

#include "absl/strings/string_view.h"

namespace egress::policy {

// `domain`: lower case, no trailing dot. True when it is a public suffix,
// and also when no list could be loaded at all: then no domain is known to
// be safe to group under.
bool IsPublicSuffix(absl::string_view domain);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_PUBLIC_SUFFIX_H_
