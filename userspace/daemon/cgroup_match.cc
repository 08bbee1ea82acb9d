#include "userspace/daemon/cgroup_match.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/common/fs.h"
#include "userspace/policy/policy_file.h"

namespace egress {
namespace {

bool HasWildcard(absl::string_view component) {
  return component.find_first_of("*?[") != absl::string_view::npos;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : absl::StrCat(dir, "/", name);
}

}  // namespace

CgroupMatches FindCgroups(const std::string& root, absl::string_view pattern,
                          size_t max_dirs) {
  CgroupMatches out;
  std::vector<std::string> parts =
      absl::StrSplit(pattern, '/', absl::SkipEmpty());
  const bool deep = std::find(parts.begin(), parts.end(), "**") != parts.end();
  // The literal prefix; its closest existing ancestor is the start.
  std::string start = "/";
  size_t depth = 0;
  while (depth < parts.size() && !HasWildcard(parts[depth])) {
    std::string next = Join(start, parts[depth]);
    if (!IsDir(root + next)) {
      // Not there (yet): watch the deepest existing ancestor.
      out.watch_dirs.push_back(start);
      return out;
    }
    start = next;
    ++depth;
  }
  struct Item {
    std::string rel;
    size_t depth;
  };
  std::vector<Item> stack = {{start, depth}};
  size_t visited = 0;
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    if (visited++ >= max_dirs) {
      out.truncated = true;
      break;
    }
    if (it.depth > 0 && policy::CgroupPatternMatches(pattern, it.rel)) {
      out.cgroups.push_back(it.rel);
    }
    if (!deep && it.depth >= parts.size()) continue;
    out.watch_dirs.push_back(it.rel);
    for (const std::string& name :
         SubdirNames(root + (it.rel == "/" ? "" : it.rel))) {
      if (!deep &&
          fnmatch(parts[it.depth].c_str(), name.c_str(), FNM_NOESCAPE) != 0) {
        continue;
      }
      stack.push_back({Join(it.rel, name), it.depth + 1});
    }
  }
  std::sort(out.cgroups.begin(), out.cgroups.end());
  // A match below another match is already covered (programs attached to a
  // cgroup run for its descendants); attaching again would run every hook
  // twice. Sorted order puts a parent right before its subtree.
  std::vector<std::string> outermost;
  for (const std::string& c : out.cgroups) {
    if (!outermost.empty() &&
        absl::StartsWith(c, absl::StrCat(outermost.back(), "/"))) {
      continue;
    }
    outermost.push_back(c);
  }
  out.cgroups = std::move(outermost);
  std::sort(out.watch_dirs.begin(), out.watch_dirs.end());
  return out;
}

}  // namespace egress
