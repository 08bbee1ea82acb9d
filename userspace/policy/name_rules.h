// Name rules ("allow 443/tcp api.example.com", "deny any '*.tracker.example'")
// in the form the kernel matches them (bpf/lib/dns_learn.h, bpf/lib/names.h;
// docs/dns.md "Learning").
//
// A rule name is a dns::DomainPattern in its canonical text. The kernel finds
// the rule names an answer's question matches in dns_names, an LPM trie keyed
// by the name written backwards ("api.example.com" -> "moc.elpmaxe.ipa" and
// a NUL, so it matches exactly; "*.example.com" -> "moc.elpmaxe.", a prefix
// of every name strictly below example.com), and binds the answer's
// addresses to each match's pattern id. The ports and verdicts of the rules
// are ordinary rules entries of family EGRESS_FAMILY_NAME keyed by that id.
// Pattern ids depend on the text alone, so a binding outlives a rule switch
// that keeps the name.
#ifndef EGRESS_USERSPACE_POLICY_NAME_RULES_H_
#define EGRESS_USERSPACE_POLICY_NAME_RULES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "egress/dns_abi.h"

namespace egress::policy {

struct Rule;

// The canonical text of a rule name ("API.Example.com." -> "api.example.com",
// "*.Example.com" -> "*.example.com"). InvalidArgument naming the name when it
// is not a valid name or wildcard, or is longer than the kernel's key holds
// (EGRESS_DNS_MAX_RULE_NAME characters).
absl::StatusOr<std::string> CanonicalRuleName(absl::string_view text);

// CanonicalRuleName for a name a user writes now (the command line, a
// policy file): also refuses an address or range written as a name
// (dns::CheckNotAddressLike), which would wait for answers that never come.
absl::StatusOr<std::string> CanonicalNewRuleName(absl::string_view text);

// The pattern id of a canonical rule name: FNV-1a 64 of its text, never 0.
uint64_t NamePatternId(absl::string_view canonical);

// The dns_names entry of a canonical rule name in `ruleset`.
std::pair<egress_dns_name_key, egress_dns_name_value> NameEntry(
    uint32_t ruleset, absl::string_view canonical);

// The dns_names entries of every name of `rules` (each name once).
std::vector<std::pair<egress_dns_name_key, egress_dns_name_value>>
CompileNameEntries(uint32_t ruleset, absl::Span<const Rule> rules);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_NAME_RULES_H_
