#include "userspace/daemon/learn.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/atomic_file.h"
#include "userspace/common/errno_status.h"
#include "userspace/policy/rule.h"

namespace egress {
namespace {

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

bool IsV4Mapped(const std::array<uint8_t, 16>& a) {
  return std::all_of(a.begin(), a.begin() + 10,
                     [](uint8_t b) { return b == 0; }) &&
         a[10] == 0xff && a[11] == 0xff;
}

std::string AddressText(uint8_t family, const std::array<uint8_t, 16>& addr) {
  policy::Cidr c;
  c.family = family;
  c.addr = addr;
  c.prefix_len = family == 4 ? 32 : 128;
  return c.ToString();
}

// JSON parsed from text holds non-negative numbers as unsigned, but a
// document built in code may hold them as signed: accept both.
bool IsNonNegativeInteger(const nlohmann::json& v) {
  return v.is_number_unsigned() ||
         (v.is_number_integer() && v.get<int64_t>() >= 0);
}

}  // namespace

LearnStore::LearnStore(size_t max_entries_per_target)
    : max_entries_(max_entries_per_target) {}

LearnStore::Key LearnStore::MakeKey(uint8_t family,
                                    const std::array<uint8_t, 16>& addr,
                                    uint8_t ip_proto, uint16_t port) {
  Key k{};
  k[0] = family;
  std::copy(addr.begin(), addr.end(), k.begin() + 1);
  k[17] = ip_proto;
  k[18] = static_cast<uint8_t>(port >> 8);
  k[19] = static_cast<uint8_t>(port & 0xff);
  return k;
}

void LearnStore::Record(const std::string& target, uint8_t family,
                        const std::array<uint8_t, 16>& addr, uint8_t ip_proto,
                        uint16_t port, uint64_t count, int64_t time_ns,
                        absl::string_view comm) {
  if (family != 4 && family != 6) return;
  std::array<uint8_t, 16> a = addr;
  if (family == 6 && IsV4Mapped(a)) {
    family = 4;
    std::copy(addr.begin() + 12, addr.end(), a.begin());
  }
  if (family == 4) std::fill(a.begin() + 4, a.end(), 0);
  count = std::max<uint64_t>(count, 1);

  Table& table = targets_[target];
  dirty_ = true;
  const Key key = MakeKey(family, a, ip_proto, port);
  auto it = table.entries.find(key);
  if (it == table.entries.end()) {
    if (table.entries.size() >= max_entries_) {
      table.overflow = SaturatingAdd(table.overflow, count);
      return;
    }
    Entry fresh;
    fresh.first_seen_ns = time_ns;
    fresh.last_seen_ns = time_ns;
    it = table.entries.emplace(key, std::move(fresh)).first;
  }
  Entry& e = it->second;
  e.count = SaturatingAdd(e.count, count);
  // Events from several CPUs can arrive slightly out of order.
  e.first_seen_ns = std::min(e.first_seen_ns, time_ns);
  e.last_seen_ns = std::max(e.last_seen_ns, time_ns);
  if (!comm.empty() && e.processes.size() < kMaxProcesses &&
      std::find(e.processes.begin(), e.processes.end(), comm) ==
          e.processes.end()) {
    e.processes.emplace_back(comm);
  }
}

std::vector<policy::Observation> LearnStore::Query(const std::string& target,
                                                   int64_t since_ns) const {
  std::vector<std::pair<Key, const Entry*>> picked;
  auto t = targets_.find(target);
  if (t != targets_.end()) {
    for (const auto& [key, entry] : t->second.entries) {
      if (entry.last_seen_ns >= since_ns) picked.emplace_back(key, &entry);
    }
  }
  std::sort(picked.begin(), picked.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<policy::Observation> result;
  result.reserve(picked.size());
  for (const auto& [key, entry] : picked) {
    policy::Observation o;
    o.family = key[0];
    std::copy(key.begin() + 1, key.begin() + 17, o.addr.begin());
    o.ip_proto = key[17];
    o.port = static_cast<uint16_t>((key[18] << 8) | key[19]);
    o.count = entry->count;
    o.first_seen_ns = entry->first_seen_ns;
    o.last_seen_ns = entry->last_seen_ns;
    o.processes = entry->processes;
    std::sort(o.processes.begin(), o.processes.end());
    result.push_back(std::move(o));
  }
  return result;
}

void LearnStore::Forget(const std::string& target) {
  if (targets_.erase(target) > 0) dirty_ = true;
}

uint64_t LearnStore::overflow(const std::string& target) const {
  auto t = targets_.find(target);
  return t == targets_.end() ? 0 : t->second.overflow;
}

size_t LearnStore::size(const std::string& target) const {
  auto t = targets_.find(target);
  return t == targets_.end() ? 0 : t->second.entries.size();
}

nlohmann::json LearnStore::ToJson() const {
  // Sorted by name (nlohmann's object is a std::map) and by key: the file is
  // the same for the same content.
  nlohmann::json targets = nlohmann::json::object();
  for (const auto& [name, table] : targets_) {
    nlohmann::json entries = nlohmann::json::array();
    for (const policy::Observation& o :
         Query(name, std::numeric_limits<int64_t>::min())) {
      entries.push_back({{"family", o.family},
                         {"addr", AddressText(o.family, o.addr)},
                         {"ip_proto", o.ip_proto},
                         {"port", o.port},
                         {"count", o.count},
                         {"first_seen_ns", o.first_seen_ns},
                         {"last_seen_ns", o.last_seen_ns},
                         {"processes", o.processes}});
    }
    targets[name] = {{"overflow", table.overflow}, {"entries", entries}};
  }
  return {{"version", 1}, {"targets", targets}};
}

absl::StatusOr<LearnStore> LearnStore::FromJson(const nlohmann::json& j,
                                                const std::string& file,
                                                size_t max_entries_per_target) {
  auto bad = [&](const std::string& field, absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", field, ": ", why));
  };
  if (!j.is_object()) return bad("(top level)", "not a JSON object");
  if (!j.contains("version") || j["version"] != 1) {
    return bad("version", "missing or not 1");
  }
  if (!j.contains("targets") || !j["targets"].is_object()) {
    return bad("targets", "missing or not an object");
  }
  LearnStore store(max_entries_per_target);
  for (const auto& [name, t] : j["targets"].items()) {
    const std::string where = absl::StrCat("targets.", name);
    if (!t.is_object()) return bad(where, "not an object");
    Table& table = store.targets_[name];
    if (t.contains("overflow")) {
      if (!IsNonNegativeInteger(t["overflow"])) {
        return bad(where + ".overflow", "not a non-negative number");
      }
      table.overflow = t["overflow"].get<uint64_t>();
    }
    if (!t.contains("entries") || !t["entries"].is_array()) {
      return bad(where + ".entries", "missing or not a list");
    }
    size_t i = 0;
    for (const nlohmann::json& e : t["entries"]) {
      const std::string at = absl::StrCat(where, ".entries[", i++, "]");
      if (!e.is_object()) return bad(at, "not an object");
      auto unsigned_field = [&](const char* f,
                                uint64_t max) -> absl::StatusOr<uint64_t> {
        if (!e.contains(f) || !IsNonNegativeInteger(e[f]) ||
            e[f].get<uint64_t>() > max) {
          return bad(absl::StrCat(at, ".", f),
                     absl::StrCat("missing or not a number 0-", max));
        }
        return e[f].get<uint64_t>();
      };
      auto time_field = [&](const char* f) -> absl::StatusOr<int64_t> {
        if (!e.contains(f) || !e[f].is_number_integer() ||
            (e[f].is_number_unsigned() &&
             e[f].get<uint64_t>() >
                 static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
          return bad(absl::StrCat(at, ".", f),
                     "missing or not a whole number of nanoseconds");
        }
        return e[f].get<int64_t>();
      };
      absl::StatusOr<uint64_t> family = unsigned_field("family", 6);
      if (!family.ok()) return family.status();
      if (*family != 4 && *family != 6) {
        return bad(at + ".family", absl::StrCat(*family, " is not 4 or 6"));
      }
      if (!e.contains("addr") || !e["addr"].is_string()) {
        return bad(at + ".addr", "missing or not a string");
      }
      const std::string addr_text = e["addr"].get<std::string>();
      absl::StatusOr<policy::Cidr> addr = policy::Cidr::Parse(addr_text);
      if (!addr.ok()) return bad(at + ".addr", addr.status().message());
      if (addr->family != *family ||
          addr->prefix_len != (*family == 4 ? 32 : 128)) {
        return bad(at + ".addr",
                   absl::StrCat("'", addr_text, "' is not one IPv", *family,
                                " address"));
      }
      absl::StatusOr<uint64_t> ip_proto = unsigned_field("ip_proto", 255);
      if (!ip_proto.ok()) return ip_proto.status();
      absl::StatusOr<uint64_t> port = unsigned_field("port", 65535);
      if (!port.ok()) return port.status();
      absl::StatusOr<uint64_t> count =
          unsigned_field("count", std::numeric_limits<uint64_t>::max());
      if (!count.ok()) return count.status();
      absl::StatusOr<int64_t> first = time_field("first_seen_ns");
      if (!first.ok()) return first.status();
      absl::StatusOr<int64_t> last = time_field("last_seen_ns");
      if (!last.ok()) return last.status();
      if (*first > *last) {
        return bad(at + ".first_seen_ns", "after last_seen_ns");
      }
      Entry entry;
      entry.count = *count;
      entry.first_seen_ns = *first;
      entry.last_seen_ns = *last;
      if (e.contains("processes")) {
        if (!e["processes"].is_array()) {
          return bad(at + ".processes", "not a list");
        }
        for (const nlohmann::json& p : e["processes"]) {
          if (!p.is_string() || p.get<std::string>().empty()) {
            return bad(at + ".processes", "not a list of names");
          }
          entry.processes.push_back(p.get<std::string>());
        }
        if (entry.processes.size() > kMaxProcesses) {
          return bad(at + ".processes",
                     absl::StrCat("more than ", kMaxProcesses, " names"));
        }
      }
      const Key key = MakeKey(static_cast<uint8_t>(*family), addr->addr,
                              static_cast<uint8_t>(*ip_proto),
                              static_cast<uint16_t>(*port));
      if (table.entries.contains(key)) {
        return bad(at, "duplicate entry");
      }
      if (table.entries.size() >= store.max_entries_) {
        table.overflow = SaturatingAdd(table.overflow, entry.count);
        continue;
      }
      table.entries.emplace(key, std::move(entry));
    }
  }
  store.dirty_ = false;
  return store;
}

absl::Status LearnStore::Save(const std::string& path) const {
  return WriteFileAtomically(path, ToJson().dump(2) + "\n");
}

absl::StatusOr<LearnStore> LearnStore::Load(const std::string& path,
                                            size_t max_entries_per_target) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return LearnStore(max_entries_per_target);
    return ErrnoStatus(errno, "open", path);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, "read", path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError(
        absl::StrCat("learn file ", path,
                     " is corrupt (not JSON): move it away to start "
                     "learning afresh"));
  }
  absl::StatusOr<LearnStore> store = FromJson(j, path, max_entries_per_target);
  if (!store.ok()) {
    return absl::DataLossError(
        absl::StrCat("learn file is corrupt: ", store.status().message()));
  }
  return store;
}

}  // namespace egress
