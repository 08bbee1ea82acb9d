// Sets of addresses written as lists of networks: subtraction (a policy
// file's `except`), the canonical form of a set (for comparing two rules by
// meaning) and containment (for "this deny covers that allow").
#ifndef EGRESS_USERSPACE_POLICY_CIDR_SET_H_
#define EGRESS_USERSPACE_POLICY_CIDR_SET_H_

#include <cstddef>
#include <vector>

#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress::policy {

// Orders by family, then address, then prefix length: IPv4 first, and a
// network right before the networks inside it that share its first address.
bool CidrLess(const Cidr& a, const Cidr& b);

// What one SubtractCidrs did after sorting its excepts, counted in the two
// steps any subtraction repeats: looking at a piece of `cidr`, and testing an
// except against a piece. The bound on these counts is the complexity
// promise below, in a form a caller (or a test) can check on its own input.
struct SubtractWork {
  // Pieces looked at: `cidr` and every half it was split into.
  size_t pieces = 0;
  // Containment tests of an except against a piece.
  size_t tests = 0;
};

// `cidr` minus every network in `excepts`, as the fewest networks, sorted by
// CidrLess. An except of another family or not inside `cidr` is ignored (the
// policy file parser refuses those before calling this). Removing a /N from
// a /M adds at most N-M networks. O(n log n + n * prefix bits) for n
// excepts: 0.0.0.0/0 minus 20,000 scattered /32s is milliseconds. After the
// sort, each except costs at most two pieces and a few tests per bit of its
// prefix; `work`, when given, receives the counts.
std::vector<Cidr> SubtractCidrs(const Cidr& cidr,
                                absl::Span<const Cidr> excepts,
                                SubtractWork* work = nullptr);

// The same set of addresses as `networks`, in its one canonical form: the
// fewest networks, sorted by CidrLess. Duplicates and networks inside others
// are dropped, and the two halves of a network become that network
// (10.0.0.0/25 + 10.0.0.128/25 = 10.0.0.0/24). Two lists hold the same
// addresses exactly when their NormalizeCidrs are equal. O(n log n).
std::vector<Cidr> NormalizeCidrs(absl::Span<const Cidr> networks);

// True if every address of `inner` is in the set `normalized`, which must be
// a NormalizeCidrs result: then a network inside the set is inside one of
// its networks. O(log n).
bool NormalizedContains(absl::Span<const Cidr> normalized, const Cidr& inner);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_CIDR_SET_H_
