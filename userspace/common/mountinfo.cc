#include "userspace/common/mountinfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace {

constexpr char kProcSelfMountInfo[] = "/proc/self/mountinfo";
// mountinfo is a few KiB; refuse to read without bound if something is wrong.
constexpr size_t kMaxMountInfoBytes = 64 << 20;

bool IsOctalDigit(char c) { return c >= '0' && c <= '7'; }

// Decodes the \ooo escapes the kernel emits for space, tab, newline and
// backslash (seq_file mangle). Anything else is copied verbatim.
std::string Unescape(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 3 < in.size() && IsOctalDigit(in[i + 1]) &&
        IsOctalDigit(in[i + 2]) && IsOctalDigit(in[i + 3])) {
      int value =
          (in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0');
      if (value <= 0xff) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(absl::string_view text) {
  std::vector<MountEntry> entries;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // Format: id parent major:minor root mount_point options [optional...] -
    //         fs_type source super_options
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 7) continue;
    size_t sep = 6;
    while (sep < fields.size() && fields[sep] != "-") ++sep;
    if (sep + 1 >= fields.size()) continue;  // No separator or no fs type.
    MountEntry entry;
    entry.mount_point = Unescape(fields[4]);
    entry.options = Unescape(fields[5]);
    entry.fs_type = Unescape(fields[sep + 1]);
    if (sep + 2 < fields.size()) entry.source = Unescape(fields[sep + 2]);
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::string> FindMount(absl::string_view text,
                                      absl::string_view fs_type) {
  for (MountEntry& entry : ParseMountInfo(text)) {
    if (entry.fs_type == fs_type) return std::move(entry.mount_point);
  }
  return absl::NotFoundError(absl::StrCat("no filesystem of type '", fs_type,
                                          "' is mounted (searched mountinfo)"));
}

absl::StatusOr<std::string> Cgroup2Root() {
  UniqueFd fd(::open(kProcSelfMountInfo, O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", kProcSelfMountInfo);
  std::string text;
  char buf[16384];
  while (text.size() < kMaxMountInfoBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", kProcSelfMountInfo);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  absl::StatusOr<std::string> root = FindMount(text, "cgroup2");
  if (!root.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "cgroup2 root: ", root.status().message(), " in ", kProcSelfMountInfo));
  }
  return root;
}

}  // namespace egress
