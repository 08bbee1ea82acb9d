#include "userspace/daemon/map_room.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace egress {
namespace {

struct MapField {
  const char* map;
  uint64_t EntryCounts::*field;
};
constexpr MapField kMaps[] = {{"rules", &EntryCounts::rules},
                              {"port_classes", &EntryCounts::ports},
                              {"unix_rules", &EntryCounts::unix_paths},
                              {"exact_rules", &EntryCounts::exact}};

}  // namespace

EntryCounts CountEntries(const policy::CompiledRuleset& set) {
  return EntryCounts{set.rules.size(), set.ports.size(), set.unix_paths.size(),
                     set.exact.size()};
}

EntryCounts MapCapacity() {
  return EntryCounts{EGRESS_MAX_RULE_ENTRIES, EGRESS_MAX_PORT_ENTRIES,
                     EGRESS_MAX_UNIX_RULES, EGRESS_MAX_EXACT_ENTRIES};
}

absl::Status CheckRoom(const std::vector<TargetEntries>& targets,
                       const EntryCounts& capacity) {
  for (const MapField& m : kMaps) {
    uint64_t held = 0, incoming = 0, after = 0, largest = 0;
    const TargetEntries* blamed = nullptr;
    for (const TargetEntries& t : targets) {
      held += t.now.*m.field;
      after += t.next.*m.field;
      largest = std::max(largest, t.next.*m.field);
      if (!t.changing) continue;
      incoming += t.next.*m.field;
      if (blamed == nullptr || t.next.*m.field > blamed->next.*m.field) {
        blamed = &t;
      }
    }
    const uint64_t cap = capacity.*m.field;
    if (blamed == nullptr || (held + incoming <= cap && after + largest <= cap))
      continue;
    const uint64_t own = blamed->next.*m.field;
    const uint64_t others = after - own;
    const uint64_t free = held >= cap ? 0 : cap - held;
    // The larger of the two needs, stated as what the policy asks for.
    const uint64_t needed = std::max(held + incoming, after + largest) - held;
    return absl::ResourceExhaustedError(absl::StrCat(
        "policy ", blamed->name, " does not fit the ", m.map, " map: it needs ",
        own, " entries, and the map must keep room for a second copy of the ",
        "largest rule set (", largest,
        ") that a change or a restart writes beside it: ", needed,
        " entries needed, ", free, " free, map capacity ", cap, " (", others,
        " held by other targets); use fewer or wider rules"));
  }
  return absl::OkStatus();
}

}  // namespace egress
