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
#include "userspace/common/saturating_add.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/unix_rules.h"

namespace egress {
namespace {

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

// FromJson's errors: "learn.json: targets.web.entries[3].port: not a number
// 0-65535".
absl::Status FieldError(absl::string_view file, absl::string_view field,
                        absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", field, ": ", why));
}

// One element of a target's "entries", checked field by field; `at` names it
// in errors. The processes come in the file's order.
struct EntryReader {
  const nlohmann::json& e;
  const std::string& file;
  const std::string& at;

  absl::Status Bad(absl::string_view field, absl::string_view why) const {
    return FieldError(file, absl::StrCat(at, ".", field), why);
  }

  absl::StatusOr<uint64_t> Unsigned(const char* f, uint64_t max) const {
    if (!e.contains(f) || !IsNonNegativeInteger(e[f]) ||
        e[f].get<uint64_t>() > max) {
      return Bad(f, absl::StrCat("missing or not a number 0-", max));
    }
    return e[f].get<uint64_t>();
  }

  absl::StatusOr<int64_t> Time(const char* f) const {
    if (!e.contains(f) || !e[f].is_number_integer() ||
        (e[f].is_number_unsigned() &&
         e[f].get<uint64_t>() >
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Bad(f, "missing or not a whole number of nanoseconds");
    }
    return e[f].get<int64_t>();
  }

  // "family": 4 or 6.
  absl::StatusOr<uint8_t> Family() const {
    EGRESS_ASSIGN_OR_RETURN(const uint64_t family, Unsigned("family", 6));
    if (family != 4 && family != 6) {
      return Bad("family", absl::StrCat(family, " is not 4 or 6"));
    }
    return static_cast<uint8_t>(family);
  }

  // "family" and "addr": one address of that family.
  absl::Status Address(policy::Observation* o) const {
    EGRESS_ASSIGN_OR_RETURN(const uint8_t family, Family());
    if (!e.contains("addr") || !e["addr"].is_string()) {
      return Bad("addr", "missing or not a string");
    }
    const std::string text = e["addr"].get<std::string>();
    absl::StatusOr<policy::Cidr> addr = policy::Cidr::Parse(text);
    if (!addr.ok()) return Bad("addr", addr.status().message());
    if (addr->family != family ||
        addr->prefix_len != (family == 4 ? 32 : 128)) {
      return Bad("addr", absl::StrCat("'", text, "' is not one IPv", family,
                                      " address"));
    }
    o->family = family;
    o->addr = addr->addr;
    return absl::OkStatus();
  }

  // "processes", optional.
  absl::Status Processes(policy::Observation* o) const {
    if (!e.contains("processes")) return absl::OkStatus();
    if (!e["processes"].is_array()) return Bad("processes", "not a list");
    for (const nlohmann::json& p : e["processes"]) {
      if (!p.is_string() || p.get<std::string>().empty()) {
        return Bad("processes", "not a list of names");
      }
      o->processes.push_back(p.get<std::string>());
    }
    if (o->processes.size() > LearnStore::kMaxProcesses) {
      return Bad(
          "processes",
          absl::StrCat("more than ", LearnStore::kMaxProcesses, " names"));
    }
    return absl::OkStatus();
  }

  // "unix": a unix socket address, in place of the inet fields.
  absl::Status UnixPath(policy::Observation* o) const {
    if (!e["unix"].is_string()) return Bad("unix", "not a string");
    o->unix_path = e["unix"].get<std::string>();
    absl::Status st = policy::UnixAddressBytes(o->unix_path).status();
    return st.ok() ? st : Bad("unix", st.message());
  }

  // "raw": true, with the socket's family and ip_proto.
  absl::Status Raw(policy::Observation* o) const {
    if (e["raw"] != true) return Bad("raw", "not true");
    EGRESS_ASSIGN_OR_RETURN(o->family, Family());
    EGRESS_ASSIGN_OR_RETURN(const uint64_t ip_proto, Unsigned("ip_proto", 255));
    o->raw = true;
    o->ip_proto = static_cast<uint8_t>(ip_proto);
    o->port = 0;
    return absl::OkStatus();
  }

  // The inet fields: family, addr, ip_proto, port.
  absl::Status Inet(policy::Observation* o) const {
    EGRESS_RETURN_IF_ERROR(Address(o));
    EGRESS_ASSIGN_OR_RETURN(const uint64_t ip_proto, Unsigned("ip_proto", 255));
    EGRESS_ASSIGN_OR_RETURN(const uint64_t port, Unsigned("port", 65535));
    o->ip_proto = static_cast<uint8_t>(ip_proto);
    o->port = static_cast<uint16_t>(port);
    if (e.contains("name")) {
      if (!e["name"].is_string() || e["name"].get<std::string>().empty()) {
        return Bad("name", "not a name");
      }
      o->name = e["name"].get<std::string>();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<policy::Observation> Read() const {
    if (!e.is_object()) return FieldError(file, at, "not an object");
    policy::Observation o;
    EGRESS_RETURN_IF_ERROR(e.contains("unix")  ? UnixPath(&o)
                           : e.contains("raw") ? Raw(&o)
                                               : Inet(&o));
    EGRESS_ASSIGN_OR_RETURN(
        o.count, Unsigned("count", std::numeric_limits<uint64_t>::max()));
    EGRESS_ASSIGN_OR_RETURN(o.first_seen_ns, Time("first_seen_ns"));
    EGRESS_ASSIGN_OR_RETURN(o.last_seen_ns, Time("last_seen_ns"));
    if (o.first_seen_ns > o.last_seen_ns) {
      return Bad("first_seen_ns", "after last_seen_ns");
    }
    EGRESS_RETURN_IF_ERROR(Processes(&o));
    return o;
  }
};

absl::StatusOr<policy::Observation> ReadEntry(const nlohmann::json& e,
                                              const std::string& file,
                                              const std::string& at) {
  return EntryReader{e, file, at}.Read();
}

}  // namespace

LearnStore::LearnStore(size_t max_entries_per_target)
    : max_entries_(max_entries_per_target) {}

LearnStore::Key LearnStore::MakeKey(uint8_t family,
                                    const std::array<uint8_t, 16>& addr,
                                    uint8_t ip_proto, uint16_t port,
                                    absl::string_view name) {
  Key k(20, '\0');
  k[0] = static_cast<char>(family);
  std::copy(addr.begin(), addr.end(), k.begin() + 1);
  k[17] = static_cast<char>(ip_proto);
  k[18] = static_cast<char>(port >> 8);
  k[19] = static_cast<char>(port & 0xff);
  k.append(name.data(), name.size());
  return k;
}

LearnStore::Key LearnStore::RawKey(uint8_t family, uint8_t ip_proto) {
  return {kRawKey, static_cast<char>(family), static_cast<char>(ip_proto)};
}

LearnStore::Key LearnStore::MakeKey(const policy::Observation& o) {
  if (o.raw) return RawKey(o.family, o.ip_proto);
  if (!o.unix_path.empty()) return kUnixKey + o.unix_path;
  return MakeKey(o.family, o.addr, o.ip_proto, o.port, o.name);
}

void LearnStore::Record(const std::string& target, uint8_t family,
                        const std::array<uint8_t, 16>& addr, uint8_t ip_proto,
                        uint16_t port, uint64_t count, int64_t time_ns,
                        absl::string_view comm, absl::string_view name) {
  if (family != 4 && family != 6) return;
  std::array<uint8_t, 16> a = addr;
  if (family == 6 && policy::IsV4Mapped(a)) {
    family = 4;
    std::copy(addr.begin() + 12, addr.end(), a.begin());
  }
  if (family == 4) std::fill(a.begin() + 4, a.end(), 0);
  Add(target, MakeKey(family, a, ip_proto, port, name), count, time_ns, comm);
}

void LearnStore::RecordUnix(const std::string& target, const std::string& path,
                            uint64_t count, int64_t time_ns,
                            absl::string_view comm) {
  if (path.empty()) return;
  Add(target, kUnixKey + path, count, time_ns, comm);
}

void LearnStore::RecordRaw(const std::string& target, uint8_t family,
                           uint8_t ip_proto, uint64_t count, int64_t time_ns,
                           absl::string_view comm) {
  if (family != 4 && family != 6) return;
  Add(target, RawKey(family, ip_proto), count, time_ns, comm);
}

void LearnStore::Add(const std::string& target, const Key& key, uint64_t count,
                     int64_t time_ns, absl::string_view comm) {
  count = std::max<uint64_t>(count, 1);
  Table& table = targets_[target];
  dirty_ = true;
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
    if (key[0] == kUnixKey) {
      o.unix_path = key.substr(1);
    } else if (key[0] == kRawKey) {
      o.raw = true;
      o.family = static_cast<uint8_t>(key[1]);
      o.ip_proto = static_cast<uint8_t>(key[2]);
      o.port = 0;
    } else {
      o.family = static_cast<uint8_t>(key[0]);
      std::copy(key.begin() + 1, key.begin() + 17, o.addr.begin());
      o.ip_proto = static_cast<uint8_t>(key[17]);
      o.port = static_cast<uint16_t>((static_cast<uint8_t>(key[18]) << 8) |
                                     static_cast<uint8_t>(key[19]));
      o.name = key.substr(20);
    }
    o.count = entry->count;
    o.first_seen_ns = entry->first_seen_ns;
    o.last_seen_ns = entry->last_seen_ns;
    o.processes = entry->processes;
    std::sort(o.processes.begin(), o.processes.end());
    result.push_back(std::move(o));
  }
  return result;
}

std::vector<std::string> LearnStore::Targets() const {
  std::vector<std::string> out;
  for (const auto& [name, table] : targets_) out.push_back(name);
  return out;
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
      nlohmann::json entry = {{"count", o.count},
                              {"first_seen_ns", o.first_seen_ns},
                              {"last_seen_ns", o.last_seen_ns},
                              {"processes", o.processes}};
      if (!o.unix_path.empty()) {
        entry["unix"] = o.unix_path;
      } else if (o.raw) {
        entry["raw"] = true;
        entry["family"] = o.family;
        entry["ip_proto"] = o.ip_proto;
      } else {
        entry["family"] = o.family;
        entry["addr"] = AddressText(o.family, o.addr);
        entry["ip_proto"] = o.ip_proto;
        entry["port"] = o.port;
        if (!o.name.empty()) entry["name"] = o.name;
      }
      entries.push_back(std::move(entry));
    }
    targets[name] = {{"overflow", table.overflow}, {"entries", entries}};
  }
  return {{"version", 1}, {"targets", targets}};
}

absl::Status LearnStore::TableFromJson(const nlohmann::json& t,
                                       const std::string& file,
                                       const std::string& where,
                                       Table* table) const {
  if (!t.is_object()) return FieldError(file, where, "not an object");
  if (t.contains("overflow")) {
    if (!IsNonNegativeInteger(t["overflow"])) {
      return FieldError(file, where + ".overflow", "not a non-negative number");
    }
    table->overflow = t["overflow"].get<uint64_t>();
  }
  if (!t.contains("entries") || !t["entries"].is_array()) {
    return FieldError(file, where + ".entries", "missing or not a list");
  }
  size_t i = 0;
  for (const nlohmann::json& e : t["entries"]) {
    const std::string at = absl::StrCat(where, ".entries[", i++, "]");
    EGRESS_ASSIGN_OR_RETURN(policy::Observation o, ReadEntry(e, file, at));
    const Key key = MakeKey(o);
    if (table->entries.contains(key)) {
      return FieldError(file, at, "duplicate entry");
    }
    if (table->entries.size() >= max_entries_) {
      table->overflow = SaturatingAdd(table->overflow, o.count);
      continue;
    }
    Entry entry;
    entry.count = o.count;
    entry.first_seen_ns = o.first_seen_ns;
    entry.last_seen_ns = o.last_seen_ns;
    entry.processes = std::move(o.processes);
    table->entries.emplace(key, std::move(entry));
  }
  return absl::OkStatus();
}

absl::StatusOr<LearnStore> LearnStore::FromJson(const nlohmann::json& j,
                                                const std::string& file,
                                                size_t max_entries_per_target) {
  if (!j.is_object()) {
    return FieldError(file, "(top level)", "not a JSON object");
  }
  if (!j.contains("version") || j["version"] != 1) {
    return FieldError(file, "version", "missing or not 1");
  }
  if (!j.contains("targets") || !j["targets"].is_object()) {
    return FieldError(file, "targets", "missing or not an object");
  }
  LearnStore store(max_entries_per_target);
  for (const auto& [name, t] : j["targets"].items()) {
    EGRESS_RETURN_IF_ERROR(store.TableFromJson(
        t, file, absl::StrCat("targets.", name), &store.targets_[name]));
  }
  store.dirty_ = false;
  return store;
}

absl::Status LearnStore::Save(const std::string& path) const {
  return WriteFileAtomically(path, policy::JsonText(ToJson(), 2) + "\n");
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
