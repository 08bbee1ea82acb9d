#include "userspace/kernel/map_walk.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>
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

// MapInfo of a map whose keys must be `key_size` bytes.
absl::StatusOr<bpf_map_info> MapInfoWithKeySize(int fd, size_t key_size) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd));
  if (info.key_size != key_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("map ", info.name, " has ", info.key_size,
                     "-byte keys, this build expects ", key_size,
                     " (pinned maps of another egress version?)"));
  }
  return info;
}

// The bytes a batch lookup writes per value: a per-CPU map's value is one
// 8-byte-aligned slot per possible CPU.
absl::StatusOr<size_t> ValueStride(const bpf_map_info& info) {
  switch (info.type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY: {
      const int cpus = libbpf_num_possible_cpus();
      if (cpus <= 0) return ErrnoStatus(-cpus, "libbpf_num_possible_cpus");
      return ((size_t{info.value_size} + 7) & ~size_t{7}) *
             static_cast<size_t>(cpus);
    }
    default:
      return size_t{info.value_size};
  }
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

// The batched walk (ForEachKeyBatchedBytes), each key with its value.
// `with_values`: the fallback walk (no batch lookup) reads each value.
absl::StatusOr<size_t> BatchedWalk(
    int fd, const bpf_map_info& info, bool with_values,
    absl::FunctionRef<void(const void* key, const void* value)> fn) {
  const size_t key_size = info.key_size;
  // A hash map's batch token is a bucket index (4 bytes); other maps' (an
  // LPM trie's, by the kernel's generic batch) is the last key.
  const size_t token_size = std::max<size_t>(key_size, 8);
  std::vector<char> in(token_size), out(token_size);
  EGRESS_ASSIGN_OR_RETURN(const size_t value_stride, ValueStride(info));
  uint32_t batch = 4096;
  std::vector<char> keys, values;
  bool first = true;
  size_t n = 0;
  for (;;) {
    keys.resize(size_t{batch} * key_size);
    values.resize(size_t{batch} * value_stride);
    uint32_t count = batch;
    const int err =
        bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(),
                             keys.data(), values.data(), &count, nullptr);
    const int e = errno;
    // Also on the last batch (ENOENT): the keys it got are valid.
    if (err == 0 || e == ENOENT) {
      for (uint32_t i = 0; i < count && n < info.max_entries; ++i, ++n) {
        fn(&keys[size_t{i} * key_size], &values[size_t{i} * value_stride]);
      }
    }
    // The generic batch (an LPM trie) walks by next key, and starts over
    // when the key it stands on was deleted meanwhile: bounded as Walk is.
    if (err == 0 && n >= info.max_entries) return n;
    if (err == 0) {
      in.swap(out);
      first = false;
      continue;
    }
    if (e == ENOENT) return n;
    // One bucket holds more keys than a batch: the same batch, larger.
    if (e == ENOSPC && batch < info.max_entries) {
      batch *= 2;
      continue;
    }
    if (first && (e == EINVAL || e == EOPNOTSUPP || e == 524 /* ENOTSUPP */)) {
      // Each value by key (the walk by next key gives keys only).
      std::vector<char> value(value_stride);
      return Walk(fd, info, [&](const void* key) {
        if (!with_values) {
          fn(key, nullptr);
        } else if (bpf_map_lookup_elem(fd, key, value.data()) == 0) {
          fn(key, value.data());
        }
      });
    }
    return ErrnoStatus(e, "bpf_map_lookup_batch", info.name);
  }
}

}  // namespace

absl::StatusOr<size_t> ForEachKeyBytes(
    int fd, size_t key_size, absl::FunctionRef<void(const void* key)> fn) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfoWithKeySize(fd, key_size));
  return Walk(fd, info, fn);
}

absl::StatusOr<size_t> ForEachKeyBatchedBytes(
    int fd, size_t key_size, absl::FunctionRef<void(const void* key)> fn) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfoWithKeySize(fd, key_size));
  return BatchedWalk(fd, info, /*with_values=*/false,
                     [&fn](const void* key, const void*) { fn(key); });
}

absl::StatusOr<size_t> ForEachEntryBatchedBytes(
    int fd, size_t key_size, size_t value_size,
    absl::FunctionRef<void(const void* key, const void* value)> fn) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfoWithKeySize(fd, key_size));
  EGRESS_ASSIGN_OR_RETURN(const size_t stride, ValueStride(info));
  if (stride != value_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "map ", info.name, " has ", stride, "-byte values, this build expects ",
        value_size, " (pinned maps of another egress version?)"));
  }
  return BatchedWalk(fd, info, /*with_values=*/true, fn);
}

absl::StatusOr<size_t> CountKeys(int fd) {
  EGRESS_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd));
  return Walk(fd, info, [](const void*) {});
}

}  // namespace egress
