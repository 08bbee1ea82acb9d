// What each target initiated while learning (audit mode): one entry per
// (family, address, protocol, port), with counts, first/last seen times and
// the processes involved. SuggestPolicy (policy/suggest.h) turns a target's
// entries into a policy file. Pure logic plus a JSON file; no kernel.
#ifndef EGRESS_USERSPACE_DAEMON_LEARN_H_
#define EGRESS_USERSPACE_DAEMON_LEARN_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/suggest.h"

namespace egress {

// Aggregated attempts per target, bounded per target. Not thread-safe: the
// daemon's event loop owns it.
class LearnStore {
 public:
  // Keep at most this many process names per entry (the first distinct ones).
  static constexpr size_t kMaxProcesses = 8;

  explicit LearnStore(size_t max_entries_per_target = 4096);

  // Adds `count` attempts (a record plus what the kernel suppressed after it;
  // 0 is taken as 1) towards (family, addr, ip_proto, port) at `time_ns`.
  // `comm` may be empty (not recorded). An IPv4-mapped IPv6 address
  // (::ffff:a.b.c.d) is stored as IPv4; an IPv4 address keeps only
  // addr[0..3]. A family other than 4 or 6 is ignored. When the target
  // already has max_entries_per_target entries, a new key is not stored and
  // `count` is added to overflow(target) instead; existing keys keep counting.
  // `name`: the DNS name the address was resolved from ("" = none); the same
  // destination reached by two names is two entries.
  void Record(const std::string& target, uint8_t family,
              const std::array<uint8_t, 16>& addr, uint8_t ip_proto,
              uint16_t port, uint64_t count, int64_t time_ns,
              absl::string_view comm, absl::string_view name = "");

  // Adds `count` attempts towards the unix socket address `path` (text form,
  // policy/unix_rules.h), as Record does for inet destinations. An empty
  // path is ignored.
  void RecordUnix(const std::string& target, const std::string& path,
                  uint64_t count, int64_t time_ns, absl::string_view comm);

  // Adds `count` raw inet sockets of `family` (4 or 6; others are ignored)
  // and protocol `ip_proto` that the target created, as Record does for
  // inet destinations.
  void RecordRaw(const std::string& target, uint8_t family, uint8_t ip_proto,
                 uint64_t count, int64_t time_ns, absl::string_view comm);

  // The target's entries with last_seen_ns >= since_ns: unix addresses
  // first (by address), then sorted by (family, addr, ip_proto, port), then
  // raw sockets by (family, ip_proto); processes sorted. Empty for an
  // unknown target.
  std::vector<policy::Observation> Query(const std::string& target,
                                         int64_t since_ns) const;

  // The targets with entries or overflow.
  std::vector<std::string> Targets() const;
  // Drops everything about `target` (entries and overflow).
  void Forget(const std::string& target);

  // Attempts not kept because the target's table was full.
  uint64_t overflow(const std::string& target) const;
  // Number of entries kept for the target.
  size_t size(const std::string& target) const;
  size_t max_entries_per_target() const { return max_entries_; }

  // True after any change since construction, loading or clear_dirty(): the
  // daemon saves the store when dirty.
  bool dirty() const { return dirty_; }
  void clear_dirty() { dirty_ = false; }

  // {"version": 1, "targets": {NAME: {"overflow": N, "entries": [{"family",
  // "addr" (text), "ip_proto", "port", "count", "first_seen_ns",
  // "last_seen_ns", "processes", "name" (when resolved)}...]}}}, entries
  // sorted as Query's; a unix
  // entry has "unix" (the address) in place of family, addr, ip_proto and
  // port; a raw socket entry has "raw": true, family and ip_proto.
  nlohmann::json ToJson() const;
  // Inverse of ToJson. InvalidArgument naming the file and the field, e.g.
  // "learn.json: targets.web.entries[3].port: not a number 0-65535". Entries
  // beyond max_entries_per_target (a smaller limit than when saved) are
  // dropped, their counts added to overflow. Missing "overflow" is 0.
  static absl::StatusOr<LearnStore> FromJson(
      const nlohmann::json& j, const std::string& file,
      size_t max_entries_per_target = 4096);

  // Writes ToJson() atomically: a temporary file next to `path`, fsync,
  // rename over `path`. Errors from the syscalls (ErrnoStatus), naming the
  // file.
  absl::Status Save(const std::string& path) const;
  // Missing file: an empty store. Unreadable: the errno's status naming the
  // file. Corrupt (not JSON, or FromJson refuses it): DataLoss naming the
  // file and the reason. The loaded store is not dirty.
  static absl::StatusOr<LearnStore> Load(const std::string& path,
                                         size_t max_entries_per_target = 4096);

 private:
  // family (1 byte), address (16), ip_proto (1), port (2, big-endian), then
  // the name it was resolved from (if any); or for a unix address kUnixKey
  // and its text; or for raw sockets kRawKey, family and ip_proto. Byte
  // order is Query's sort order (kRawKey sorts after both families).
  using Key = std::string;
  static constexpr char kUnixKey = 1;
  static constexpr char kRawKey = 7;

  struct Entry {
    uint64_t count = 0;
    int64_t first_seen_ns = 0;
    int64_t last_seen_ns = 0;
    std::vector<std::string> processes;  // distinct, in arrival order
  };

  struct Table {
    absl::flat_hash_map<Key, Entry> entries;
    uint64_t overflow = 0;
  };

  static Key MakeKey(uint8_t family, const std::array<uint8_t, 16>& addr,
                     uint8_t ip_proto, uint16_t port, absl::string_view name);
  static Key MakeKey(const policy::Observation& o);
  static Key RawKey(uint8_t family, uint8_t ip_proto);
  // Adds to the entry of `key` (new if the table has room, else overflow).
  void Add(const std::string& target, const Key& key, uint64_t count,
           int64_t time_ns, absl::string_view comm);

  // FromJson of one target's object into `table`; `where` names it in
  // errors.
  absl::Status TableFromJson(const nlohmann::json& t, const std::string& file,
                             const std::string& where, Table* table) const;

  size_t max_entries_;
  absl::flat_hash_map<std::string, Table> targets_;
  bool dirty_ = false;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_LEARN_H_
