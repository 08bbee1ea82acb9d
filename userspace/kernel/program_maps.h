// Which maps a loaded program reads, and swapping the programs under live
// links. Programs find their maps when they are loaded: if the map pins were
// removed and the maps created again, the pinned programs go on reading the
// old ones, and every rule written to the new maps is ignored. egressd checks
// at start and reloads such programs against the pinned maps.
#ifndef EGRESS_USERSPACE_KERNEL_PROGRAM_MAPS_H_
#define EGRESS_USERSPACE_KERNEL_PROGRAM_MAPS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/kernel/target_programs.h"

namespace egress {

// Map name -> map id.
using MapIds = std::map<std::string, uint32_t>;

// The maps the program `prog_fd` uses, by name (the kernel keeps the first
// 15 characters). Errno status of a bpf_obj_get_info_by_fd.
absl::StatusOr<MapIds> ProgramMaps(int prog_fd);

// True when every program pinned in `prog_dir` (one per hook of `hooks`,
// the set's HooksOf) that uses a map named in `pinned` uses that very map
// (same id). Errno status of opening a program pin or reading its info.
absl::StatusOr<bool> ProgramsUseMaps(
    const std::string& prog_dir, const MapIds& pinned,
    const std::vector<HookSpec>& hooks = AllHooks());

// Makes every link pinned in `link_dirs` run the program pinned for its hook
// in `prog_dir`, atomically per link (bpf_link_update: the hook never runs
// without a program). Link pins that are missing or detached are skipped.
// Errno status of the first update that fails.
absl::Status UpdateLinks(const std::string& prog_dir,
                         const std::vector<std::string>& link_dirs,
                         const std::vector<HookSpec>& hooks = AllHooks());

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_PROGRAM_MAPS_H_
