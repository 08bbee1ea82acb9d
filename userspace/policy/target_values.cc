#include "userspace/policy/target_values.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::policy {
namespace {

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

constexpr absl::string_view kCgroupWildcards = "*?[";

bool IsCgroupWildcard(char c) {
  return kCgroupWildcards.find(c) != absl::string_view::npos;
}

// Where the bracket expression opened at c[open] ends (its "]"), or npos, as
// fnmatch(FNM_NOESCAPE) reads it: a leading "!" or "^" negates, a "]" right
// after those is a member, and "[:class:]", "[.x.]" and "[=x=]" are one
// member each (a "[" starting none of them is a member itself).
size_t BracketEnd(absl::string_view c, size_t open) {
  size_t i = open + 1;
  if (i < c.size() && (c[i] == '!' || c[i] == '^')) ++i;
  if (i < c.size() && c[i] == ']') ++i;
  while (i < c.size()) {
    if (c[i] == ']') return i;
    if (c[i] == '[' && i + 1 < c.size() &&
        (c[i + 1] == ':' || c[i + 1] == '.' || c[i + 1] == '=')) {
      const char end[] = {c[i + 1], ']'};
      const size_t close = c.find(absl::string_view(end, 2), i + 2);
      if (close != absl::string_view::npos) {
        i = close + 2;
        continue;
      }
    }
    ++i;
  }
  return absl::string_view::npos;
}

}  // namespace

bool HasCgroupWildcard(absl::string_view s) {
  return s.find_first_of(kCgroupWildcards) != absl::string_view::npos;
}

bool BracketsClose(absl::string_view c) {
  for (size_t i = c.find('['); i != absl::string_view::npos;
       i = c.find('[', i + 1)) {
    i = BracketEnd(c, i);
    if (i == absl::string_view::npos) return false;
  }
  return true;
}

std::string CgroupPathText(absl::string_view path) {
  std::string text;
  text.reserve(path.size());
  for (const char c : path) {
    if (IsCgroupWildcard(c)) {
      text.append({'[', c, ']'});
    } else {
      text.push_back(c);
    }
  }
  return text;
}

absl::StatusOr<std::string> CgroupPathOfText(absl::string_view text) {
  std::string path;
  path.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!IsCgroupWildcard(c)) {
      path.push_back(c);
    } else if (c == '[' && i + 2 < text.size() &&
               IsCgroupWildcard(text[i + 1]) && text[i + 2] == ']') {
      path.push_back(text[i + 1]);
      i += 2;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text),
          " has a wildcard; use cgroupPattern (--pattern) to match several "
          "cgroups, or write a literal *, ? or [ as [*], [?] or [[]"));
    }
  }
  return path;
}

absl::Status CheckCgroupPath(absl::string_view text) {
  return CgroupPathOfText(text).status();
}

absl::Status CheckCgroupPattern(absl::string_view pattern) {
  if (!HasCgroupWildcard(pattern)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(pattern),
                     " has no wildcard (*, ? or [...]); use cgroupPath "
                     "(--cgroup)"));
  }
  // Every "[" of every component: a bracket expression never spans a "/".
  for (absl::string_view c : absl::StrSplit(pattern, '/')) {
    if (!BracketsClose(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(pattern), ": unclosed \"[\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckContainer(absl::string_view container) {
  if (!container.empty() && container.size() <= 128 &&
      container.find_first_of(" /,=\n") == absl::string_view::npos) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Quote(container), " is not a container name or id"));
}

}  // namespace egress::policy
