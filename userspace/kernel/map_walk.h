// One way to walk the keys of a BPF map from userspace.
//
//   EGRESS_ASSIGN_OR_RETURN(size_t n, ForEachKey<egress_peer_key>(
//       fd, [&](const egress_peer_key& k) { ... }));
//
// bpf_map_get_next_key restarts from the first key when the key passed in
// was deleted meanwhile (hash and LPM maps alike), so a walk of a map that
// the hooks write (udp_peers, rule_hits) could go round forever. Every walk
// therefore stops after the map's max_entries keys. The callback must not
// delete from the map it walks: collect the keys, delete after the walk.
#ifndef EGRESS_USERSPACE_KERNEL_MAP_WALK_H_
#define EGRESS_USERSPACE_KERNEL_MAP_WALK_H_

#include <cstddef>
#include <cstring>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace egress {

// Calls `fn` with each key of the map `fd` (`key_size` bytes), in the
// kernel's order, at most max_entries times. Returns the number of keys
// visited. FailedPrecondition when the map's key size is not `key_size`;
// errno status when the map's info cannot be read.
absl::StatusOr<size_t> ForEachKeyBytes(
    int fd, size_t key_size, absl::FunctionRef<void(const void* key)> fn);

// The number of keys in the map `fd` (a walk: for status and tests). Errno
// status when the map's info cannot be read.
absl::StatusOr<size_t> CountKeys(int fd);

// Typed form: `fn` takes a const Key&, and the map's key size must be
// sizeof(Key).
template <typename Key, typename Fn>
absl::StatusOr<size_t> ForEachKey(int fd, Fn&& fn) {
  return ForEachKeyBytes(fd, sizeof(Key), [&fn](const void* raw) {
    Key key;
    std::memcpy(&key, raw, sizeof(key));
    fn(static_cast<const Key&>(key));
  });
}

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_MAP_WALK_H_
