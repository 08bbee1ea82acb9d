// Room in the rule maps for rule set switches. A switch writes the new set
// beside the one in use and deletes the old one after the flip, so the maps
// must always keep free as many entries as the largest set: otherwise the
// next change of that target (or a restart that must write its set again)
// fails with ENOSPC and nothing short of removing the target recovers. Pure
// arithmetic over entry counts, checked before anything is written.
#ifndef EGRESS_USERSPACE_DAEMON_MAP_ROOM_H_
#define EGRESS_USERSPACE_DAEMON_MAP_ROOM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "userspace/policy/compile.h"

namespace egress {

// Entries per rule map (or, as a capacity, each map's max_entries).
struct EntryCounts {
  // rules, port_classes, unix_rules, exact_rules
  uint64_t rules = 0, ports = 0, unix_paths = 0, exact = 0;
};

EntryCounts CountEntries(const policy::CompiledRuleset& set);

// The max_entries of the pinned maps (bpf/maps.h).
EntryCounts MapCapacity();

// One target as a change sees it: what its set holds in the maps now (zero
// for a target being created) and what it will hold after (equal to `now`
// when the change does not touch it).
struct TargetEntries {
  std::string name;
  EntryCounts now;
  EntryCounts next;
  bool changing = false;
};

// OK when, for every map, (1) the changing targets' new sets fit beside
// everything held now (the moment before the flips), and (2) afterwards the
// maps still have room for a second copy of the largest set (its next
// change, a restart that cannot adopt). ResourceExhausted otherwise, naming
// the changing target with the largest set in the map that overflows and
// the numbers: entries needed, free now, the map's capacity.
absl::Status CheckRoom(const std::vector<TargetEntries>& targets,
                       const EntryCounts& capacity);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_MAP_ROOM_H_
