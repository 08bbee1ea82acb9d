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

// ForEachKeyBytes for a hash map, by batch lookups (BPF_MAP_LOOKUP_BATCH,
// Linux 5.6+): the kernel hands over a bucket at a time, so a key in the map
// from the start of the walk to its end is visited exactly once, whatever
// the hooks insert or the LRU evicts meanwhile (a walk by next key starts
// over when the key it stands on goes, and its bound may then cut it
// short). Other maps with a batch lookup (an LPM trie: the kernel's generic
// batch, by next key inside the kernel) cost one syscall per 4,096 keys
// instead of two per key; such a walk is bounded by max_entries as the walk
// by next key is. Per-CPU maps are walked too (their values are sized per
// possible CPU). Where the kernel has no batch lookup for the map, the walk
// by next key. Errno status of a lookup that fails otherwise.
absl::StatusOr<size_t> ForEachKeyBatchedBytes(
    int fd, size_t key_size, absl::FunctionRef<void(const void* key)> fn);

// ForEachKeyBatchedBytes with each key's value (`value_size` bytes: the
// map's, per CPU for a per-CPU map). FailedPrecondition when the map's
// value size is not `value_size` (a per-CPU map: not value_size per CPU).
// Where the kernel has no batch lookup, each value is read by key: a key
// deleted in between is skipped.
absl::StatusOr<size_t> ForEachEntryBatchedBytes(
    int fd, size_t key_size, size_t value_size,
    absl::FunctionRef<void(const void* key, const void* value)> fn);

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

template <typename Key, typename Fn>
absl::StatusOr<size_t> ForEachKeyBatched(int fd, Fn&& fn) {
  return ForEachKeyBatchedBytes(fd, sizeof(Key), [&fn](const void* raw) {
    Key key;
    std::memcpy(&key, raw, sizeof(key));
    fn(static_cast<const Key&>(key));
  });
}

// Typed: `fn` takes (const Key&, const Value&); the map's value must be one
// Value (not a per-CPU map).
template <typename Key, typename Value, typename Fn>
absl::StatusOr<size_t> ForEachEntryBatched(int fd, Fn&& fn) {
  return ForEachEntryBatchedBytes(
      fd, sizeof(Key), sizeof(Value),
      [&fn](const void* raw_key, const void* raw_value) {
        Key key;
        Value value;
        std::memcpy(&key, raw_key, sizeof(key));
        std::memcpy(&value, raw_value, sizeof(value));
        fn(static_cast<const Key&>(key), static_cast<const Value&>(value));
      });
}

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_MAP_WALK_H_
