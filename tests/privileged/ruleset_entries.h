// Entries per ruleset id in the shared rule maps, walked now: what the
// spare and restart tests compare before and after a change or a restart.
#ifndef EGRESS_TESTS_PRIVILEGED_RULESET_ENTRIES_H_
#define EGRESS_TESTS_PRIVILEGED_RULESET_ENTRIES_H_

#include <bpf/bpf.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "gtest/gtest.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/map_walk.h"

namespace egress {

// Adds the entries per ruleset id of the map `name` pinned in `maps_dir` to
// `n`. A map that cannot be opened or walked is a test failure.
template <typename Key>
void CountEntriesByRuleset(const std::string& maps_dir, const char* name,
                           std::map<uint32_t, size_t>& n) {
  UniqueFd fd(bpf_obj_get(absl::StrCat(maps_dir, "/", name).c_str()));
  if (!fd.valid()) {
    ADD_FAILURE() << "cannot open " << maps_dir << "/" << name;
    return;
  }
  auto walked =
      ForEachKey<Key>(fd.get(), [&](const Key& k) { ++n[k.ruleset]; });
  if (!walked.ok()) ADD_FAILURE() << name << ": " << walked.status();
}

// Entries per ruleset id over every rule map pinned in `maps_dir`: rules,
// port classes, exact, DNS name and unix entries.
inline std::map<uint32_t, size_t> EntriesByRuleset(
    const std::string& maps_dir) {
  std::map<uint32_t, size_t> n;
  CountEntriesByRuleset<egress_rule_key>(maps_dir, "rules", n);
  CountEntriesByRuleset<egress_port_key>(maps_dir, "port_classes", n);
  CountEntriesByRuleset<egress_exact_key>(maps_dir, "exact_rules", n);
  CountEntriesByRuleset<egress_dns_name_key>(maps_dir, "dns_names", n);
  CountEntriesByRuleset<egress_unix_key>(maps_dir, "unix_rules", n);
  return n;
}

}  // namespace egress

#endif  // EGRESS_TESTS_PRIVILEGED_RULESET_ENTRIES_H_
