// What turns one compiled rule set into another under the same ruleset id:
// the entries to write (new keys, or keys whose value changed) and the keys
// to delete. A target keeps its previous set in the maps as a spare, under
// its own id, while the active set serves lookups; the next change writes
// only this difference into the spare and then flips to it, so a change of
// one rule on a 100,000-rule target writes a handful of entries, not all.
#ifndef EGRESS_USERSPACE_POLICY_COMPILED_DIFF_H_
#define EGRESS_USERSPACE_POLICY_COMPILED_DIFF_H_

#include "userspace/policy/compile.h"

namespace egress::policy {

struct CompiledDiff {
  CompiledRuleset upserts;  // write these (BPF_ANY)
  CompiledRuleset deletes;  // then delete these keys
};

// `from` and `to` must have the same ruleset id. Entries are compared as
// bytes (Compile zeroes every padding byte). Upserts keep `to`'s order.
CompiledDiff DiffCompiled(const CompiledRuleset& from,
                          const CompiledRuleset& to);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_COMPILED_DIFF_H_
