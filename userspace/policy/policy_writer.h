// Writing policy files: the inverse of ParsePolicy (policy_file.h), for tools
// that produce policies (SuggestPolicy, a future `egressctl export`).
//
// The output is a block-style YAML document in the layout of policies/*.yaml,
// with `# ...` comments where asked. Every scalar is emitted by yaml-cpp's
// YAML::Emitter, so values with ':', '#', quotes, newlines or non-ASCII text
// are quoted by the YAML library, never by hand. The output depends only on
// the document (no time, no host state except /etc/services, see below).
#ifndef EGRESS_USERSPACE_POLICY_POLICY_WRITER_H_
#define EGRESS_USERSPACE_POLICY_POLICY_WRITER_H_

#include <map>
#include <string>
#include <vector>

#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/vocabulary.h"

namespace egress::policy {

// Everything a policy file says, plus the comments to write with it.
struct PolicyDocument {
  std::string name;  // metadata.name
  PolicyTarget target;
  Mode mode = Mode::kEnforce;
  LoggingLevel logging = LoggingLevel::kDenied;
  std::map<std::string, std::string> annotations;
  // Lines written as "# line" at the very top of the file.
  std::vector<std::string> header_comment;
  // Allow and deny rules, any mix. Allow rules are written to spec.egress and
  // deny rules to spec.egressDeny, each keeping its relative order.
  std::vector<Rule> rules;
  // Optional, empty or parallel to `rules`: comment lines written as
  // "# ..." just above each rule.
  std::vector<std::vector<std::string>> rule_comments;
  // Optional, empty or parallel to `rules`: each rule's `name:` ("" = none).
  // Without it, each rule's Rule::name (a policy read and written back keeps
  // its names). Names must be valid and unique (ParsePolicy rejects the
  // file otherwise).
  std::vector<std::string> rule_names;
};

// A policy file (YAML text) that ParsePolicy reads back to the same policy:
// the same name, target, mode, logging and annotations, and for each rule in
// order (allow rules first in their original relative order, then deny
// rules) the same action, name, comment, SET of ports and SET of
// destinations. This holds when the document itself is valid (a valid name
// and target; valid, unique rule names); WritePolicy writes what it is given
// and leaves validation to ParsePolicy.
//
// How a Rule is written:
//   comment   Rule::comment, plus "host NAME" when Rule::host is set, as the
//             rule's `comment:`. A leading "NAME: " (or a whole comment equal
//             to NAME) is dropped when the rule is written with that name,
//             because ParsePolicy joins name and comment that way.
//   to        one `- ipBlock: {cidr: A/N}` per destination, in order, always
//             with the prefix length; omitted when there are none (anywhere).
//   ports     omitted when the set is exactly every tcp and udp port plus
//             icmp (ParsePolicy's meaning of no ports). Otherwise, first one
//             entry per service word of Rule::spec ("smtp", "domain/udp";
//             words separated by ",") whose LookupService expansion lies
//             inside the rule's ports: `port: smtp`, or with `protocol: UDP`
//             for a "/udp" word. Then the ports no service entry covered,
//             sorted, as `{port, endPort, protocol: TCP|UDP}`, `{protocol:
//             TCP}` for every tcp port, `{protocol: ICMP}` for icmp.
//   raw       `raw: true`, alone. A Rule that mixes kRaw with other ports
//             (neither the rule grammar nor ParsePolicy makes one) is written
//             as two rules: the raw one, then the rest.
//   unix      `unix: [ADDRESS...]`, alone, for a unix rule.
//
// Cases a policy file cannot express, and what is written instead:
//   - a rule with no ports at all matches nothing; it is left out, with a
//     comment saying so (writing it without ports would mean "any").
//   - port 0 (files use 1-65535): a range starting at 0 starts at 1, and a
//     range that is only port 0 is left out of the rule.
// Service names are expanded again by ParsePolicy on the host that reads the
// file, from that host's /etc/services (see services.h).
std::string WritePolicy(const PolicyDocument& doc);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_POLICY_WRITER_H_
