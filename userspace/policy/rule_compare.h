// Comparing rules by what they mean, not by how they were typed: the one
// place that decides when two rules are "the same rule" (adding a rule twice,
// deleting a rule by its text, keeping ids across an apply) and when an allow
// rule can never take effect because a deny rule covers it.
#ifndef EGRESS_USERSPACE_POLICY_RULE_COMPARE_H_
#define EGRESS_USERSPACE_POLICY_RULE_COMPARE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// The ports of a rule in canonical form: tcp ranges, then udp ranges, each
// sorted with overlapping and adjacent ranges joined (1-10 + 11-20 = 1-20),
// then icmp and raw once each (with lo/hi at their defaults). Two port lists
// match the same traffic exactly when their CanonicalPorts are equal.
std::vector<PortProto> CanonicalPorts(absl::Span<const PortProto> ports);

// A key naming what a rule matches and does: the action, CanonicalPorts,
// the destinations as NormalizeCidrs (cidr_set.h; a list that is all of
// IPv4 and all of IPv6 is "anywhere", the same as no destinations), the
// host name and a unix rule's addresses as a set. Not part of it: id, comment,
// expires and the `spec` text, so "allow smtp 10.0.0.5" and "allow
// 25/tcp 10.0.0.5/32" have one identity, as do "allow 443" and "allow https"
// (443/tcp + 443/udp). Hashable and printable, for diffs of many thousands of
// rules in linear time; the text is for comparison only (it is not a format
// anyone parses).
std::string RuleIdentity(const Rule& rule);
// Appends RuleIdentity(rule) to `out`: a buffer reused over many rules is
// allocated once (identity_index.h hashes it).
void AppendRuleIdentity(const Rule& rule, std::string& out);

// Appends bytes that are equal for two rules whenever their RuleIdentity
// is (a hash key: identity_index.h), made without the identity's text for
// a rule of ports and destinations alone, as most are.
void AppendIdentityKey(const Rule& rule, std::string& out);

// True when `a` and `b` agree in every field RuleIdentity reads, so their
// identities are equal without building either (false says nothing).
bool SameIdentityFields(const Rule& a, const Rule& b);

// RuleIdentity(a) == RuleIdentity(b).
bool SameRule(const Rule& a, const Rule& b);

// SameRule(rule, other) for many others (a target of 100,000 rules searched
// for one): the rule's identity is made once, and an other's only when its
// action and CanonicalPorts already agree (the identity holds both
// unambiguously), so most rules cost no text at all.
class SameRuleAs {
 public:
  explicit SameRuleAs(const Rule& rule);
  bool operator()(const Rule& other) const;

 private:
  Action action_;
  std::vector<PortProto> ports_;
  std::string identity_;
};

// The rules at the start and at the end of `before` and `after` that have
// the same ids in the same places (head and tail never overlap): what a diff
// of a change compares in place, hashing only what lies between. Ids are
// unique within a target, so an id between is in neither head nor tail.
struct CommonEnds {
  size_t head = 0, tail = 0;
};
CommonEnds CommonEndsById(absl::Span<const Rule> before,
                          absl::Span<const Rule> after);

// The index in `rules` of the first deny rule that covers all of `allow`, so
// that `allow` can never let anything through (deny beats allow): every
// tcp/udp range of `allow` lies inside the deny's ranges of that protocol,
// icmp and raw need the deny to have icmp / raw, and every destination of
// `allow` (none = anywhere) lies inside the deny's destinations (none =
// anywhere); raw is a socket permission, so for it destinations do not
// count; a unix allow needs every one of its addresses in the deny. nullopt
// when no single deny covers it (a partial overlap is not shadowing: part of
// the allow still works), when `allow` is not an allow rule, or when it has no
// ports (it matches nothing).
std::optional<size_t> ShadowingDeny(absl::Span<const Rule> rules,
                                    const Rule& allow);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_RULE_COMPARE_H_
