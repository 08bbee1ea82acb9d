#include "userspace/kernel/program_maps.h"

#include <bpf/bpf.h>
#include <errno.h>

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/target_programs.h"

namespace egress {
namespace {

absl::StatusOr<UniqueFd> OpenPin(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) return ErrnoStatus(errno, "bpf_obj_get", path);
  return fd;
}

}  // namespace

absl::StatusOr<MapIds> ProgramMaps(int prog_fd) {
  uint32_t ids[64] = {};
  bpf_prog_info info{};
  info.nr_map_ids = std::size(ids);
  info.map_ids = reinterpret_cast<uintptr_t>(ids);
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
    return ErrnoStatus(errno, "bpf_obj_get_info_by_fd", "program");
  }
  MapIds maps;
  uint32_t n = std::min<uint32_t>(info.nr_map_ids, std::size(ids));
  for (uint32_t i = 0; i < n; ++i) {
    UniqueFd map(bpf_map_get_fd_by_id(ids[i]));
    if (!map) continue;  // freed since: not one of the pinned maps
    bpf_map_info m{};
    uint32_t mlen = sizeof(m);
    if (bpf_obj_get_info_by_fd(map.get(), &m, &mlen) != 0) {
      return ErrnoStatus(errno, "bpf_obj_get_info_by_fd", "map");
    }
    maps[m.name] = m.id;
  }
  return maps;
}

absl::StatusOr<bool> ProgramsUseMaps(const std::string& prog_dir,
                                     const MapIds& pinned,
                                     const std::vector<HookSpec>& hooks) {
  for (const HookSpec& h : hooks) {
    EGRESS_ASSIGN_OR_RETURN(UniqueFd prog, OpenPin(ProgPin(prog_dir, h)));
    EGRESS_ASSIGN_OR_RETURN(MapIds used, ProgramMaps(prog.get()));
    for (const auto& [name, id] : used) {
      auto want = pinned.find(name);
      if (want != pinned.end() && want->second != id) return false;
    }
  }
  return true;
}

absl::Status UpdateLinks(const std::string& prog_dir,
                         const std::vector<std::string>& link_dirs,
                         const std::vector<HookSpec>& hooks) {
  for (const HookSpec& h : hooks) {
    EGRESS_ASSIGN_OR_RETURN(UniqueFd prog, OpenPin(ProgPin(prog_dir, h)));
    for (const std::string& dir : link_dirs) {
      std::string pin = LinkPin(dir, h);
      UniqueFd link(bpf_obj_get(pin.c_str()));
      if (!link) continue;
      if (bpf_link_update(link.get(), prog.get(), nullptr) != 0 &&
          errno != ENOLINK) {  // ENOLINK: its cgroup is gone
        return ErrnoStatus(errno, "bpf_link_update", pin);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace egress
