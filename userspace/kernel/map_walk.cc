#include "userspace/kernel/map_walk.h"

#include <bpf/bpf.h>
#include <errno.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

absl::StatusOr<bpf_map_info> MapInfo(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    return ErrnoStatus(errno, "bpf_obj_get_info_by_fd", "map to walk");
  }
  return info;
}

// The walk itself, bounded by the map's max_entries.
size_t Walk(int fd, const bpf_map_info& info,
            absl::FunctionRef<void(const void* key)> fn) {
  std::vector<char> key(info.key_size), next(info.key_size);
  const void* prev = nullptr;
  size_t n = 0;
  while (n < info.max_entries &&
         bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    fn(next.data());
    ++n;
    key.swap(next);
    prev = key.data();
  }
  return n;
}

}  // namespace

absl::StatusOr<size_t> ForEachKeyBytes(
    int fd, size_t key_size, absl::FunctionRef<void(const void* key)> fn) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd));
  if (info.key_size != key_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("map ", info.name, " has ", info.key_size,
                     "-byte keys, this build expects ", key_size,
                     " (pinned maps of another egress version?)"));
  }
  return Walk(fd, info, fn);
}

absl::StatusOr<size_t> CountKeys(int fd) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd));
  return Walk(fd, info, [](const void*) {});
}

}  // namespace egress
