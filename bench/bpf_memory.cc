#include "bench/bpf_memory.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {
namespace {

// "key:\tvalue" lines of /proc/self/fdinfo/<fd>.
std::map<std::string, std::string> FdInfo(int fd) {
  std::map<std::string, std::string> out;
  std::ifstream in(absl::StrCat("/proc/self/fdinfo/", fd));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (kv.size() == 2) {
      out[kv[0]] = std::string(absl::StripAsciiWhitespace(kv[1]));
    }
  }
  return out;
}

uint64_t Number(const std::map<std::string, std::string>& info,
                const std::string& key) {
  auto it = info.find(key);
  uint64_t v = 0;
  if (it != info.end()) (void)absl::SimpleAtoi(it->second, &v);
  return v;
}

class Tally {
 public:
  void Add(int fd) {
    std::map<std::string, std::string> info = FdInfo(fd);
    if (info.count("map_id")) {
      if (maps_.insert(Number(info, "map_id")).second) {
        ++m_.maps;
        m_.map_bytes += Number(info, "memlock");
      }
    } else if (info.count("link_id")) {
      ++m_.links;
      AddProgId(Number(info, "prog_id"));
    } else if (info.count("prog_id")) {
      AddProg(info);
    }
  }
  const BpfMemory& memory() const { return m_; }

 private:
  void AddProgId(uint64_t id) {
    if (id == 0 || progs_.count(id)) return;
    UniqueFd fd(bpf_prog_get_fd_by_id(static_cast<uint32_t>(id)));
    if (fd) AddProg(FdInfo(fd.get()));
  }
  void AddProg(const std::map<std::string, std::string>& info) {
    if (progs_.insert(Number(info, "prog_id")).second) {
      ++m_.progs;
      m_.prog_bytes += Number(info, "memlock");
    }
  }

  BpfMemory m_;
  std::set<uint64_t> maps_, progs_;
};

}  // namespace

absl::StatusOr<BpfMemory> BpfMemoryBelow(const std::string& pin_dir) {
  std::error_code ec;
  Tally tally;
  auto it = std::filesystem::recursive_directory_iterator(pin_dir, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", pin_dir, ": ", ec.message()));
  }
  // Bounded: one pass over the directory tree.
  for (; it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    UniqueFd fd(bpf_obj_get(it->path().c_str()));
    if (fd) tally.Add(fd.get());
  }
  return tally.memory();
}

}  // namespace egress::bench
