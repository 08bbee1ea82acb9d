#include "tests/testing/cgroup_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/file_util.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace testing {
namespace {

constexpr absl::Duration kKillTimeout = absl::Seconds(5);
constexpr int kMaxTreeDepth = 64;  // Far beyond anything a test creates.

absl::Status ValidateName(absl::string_view name, absl::string_view what) {
  if (name.empty() || name == "." || name == ".." ||
      absl::StrContains(name, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "' is not a valid directory name"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> InodeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
  return static_cast<uint64_t>(st.st_ino);
}

// Sub-directories of `dir` (the cgroup children), not recursive.
absl::StatusOr<std::vector<std::string>> SubDirs(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir", dir);
  std::vector<std::string> out;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR) continue;
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(absl::StrCat(dir, "/", name));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus(err, "readdir", dir);
  return out;
}

absl::StatusOr<std::vector<int>> ReadProcs(const std::string& dir) {
  std::string file = absl::StrCat(dir, "/cgroup.procs");
  EGRESS_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  std::vector<int> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    int pid;
    if (!absl::SimpleAtoi(line, &pid)) {
      return absl::InternalError(
          absl::StrCat("parse ", file, ": bad pid '", line, "'"));
    }
    pids.push_back(pid);
  }
  return pids;
}

// All pids in `dir` and below (depth-first), for diagnostics and the
// no-cgroup.kill fallback.
absl::Status CollectProcs(const std::string& dir, int depth,
                          std::vector<int>* pids) {
  if (depth > kMaxTreeDepth) {
    return absl::InternalError(absl::StrCat(dir, ": cgroup tree too deep"));
  }
  absl::StatusOr<std::vector<int>> here = ReadProcs(dir);
  if (!here.ok()) {
    if (absl::IsNotFound(here.status())) return absl::OkStatus();  // Raced.
    return here.status();
  }
  pids->insert(pids->end(), here->begin(), here->end());
  absl::StatusOr<std::vector<std::string>> subdirs = SubDirs(dir);
  if (!subdirs.ok()) {
    return absl::IsNotFound(subdirs.status()) ? absl::OkStatus()
                                              : subdirs.status();
  }
  for (const std::string& sub : *subdirs) {
    EGRESS_RETURN_IF_ERROR(CollectProcs(sub, depth + 1, pids));
  }
  return absl::OkStatus();
}

// cgroup.events "populated" covers the whole subtree.
absl::StatusOr<bool> IsPopulated(const std::string& dir) {
  EGRESS_ASSIGN_OR_RETURN(std::string events,
                          ReadFile(absl::StrCat(dir, "/cgroup.events")));
  for (absl::string_view line : absl::StrSplit(events, '\n')) {
    if (absl::ConsumePrefix(&line, "populated ")) return line != "0";
  }
  return absl::InternalError(
      absl::StrCat(dir, "/cgroup.events: no 'populated' line"));
}

absl::Status RemoveTree(const std::string& dir, int depth,
                        absl::Time deadline) {
  if (depth > kMaxTreeDepth) {
    return absl::InternalError(absl::StrCat(dir, ": cgroup tree too deep"));
  }
  absl::StatusOr<std::vector<std::string>> subdirs = SubDirs(dir);
  if (!subdirs.ok()) {
    return absl::IsNotFound(subdirs.status()) ? absl::OkStatus()
                                              : subdirs.status();
  }
  for (const std::string& sub : *subdirs) {
    EGRESS_RETURN_IF_ERROR(RemoveTree(sub, depth + 1, deadline));
  }
  // EBUSY can linger briefly while killed tasks finish exiting.
  while (::rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY || absl::Now() >= deadline) {
      return ErrnoStatus(errno, "rmdir", dir);
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

}  // namespace

TestCgroup::TestCgroup(std::string root, std::string path, uint64_t id)
    : root_(std::move(root)), path_(std::move(path)), id_(id) {
  absl::string_view rel = absl::string_view(path_).substr(root_.size());
  relative_path_ =
      absl::StartsWith(rel, "/") ? std::string(rel) : absl::StrCat("/", rel);
}

absl::StatusOr<std::unique_ptr<TestCgroup>> TestCgroup::Create(
    absl::string_view name_prefix) {
  EGRESS_RETURN_IF_ERROR(ValidateName(name_prefix, "cgroup name prefix"));
  EGRESS_ASSIGN_OR_RETURN(std::string root, Cgroup2Root());
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  absl::BitGen gen;
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string path =
        absl::StrFormat("%s/egress-test-%s-%08x", root == "/" ? "" : root,
                        name_prefix, absl::Uniform<uint32_t>(gen));
    if (::mkdir(path.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return ErrnoStatus(errno, "mkdir", path);
    }
    absl::StatusOr<uint64_t> id = InodeOf(path);
    if (!id.ok()) {
      ::rmdir(path.c_str());
      return id.status();
    }
    return std::unique_ptr<TestCgroup>(new TestCgroup(root, path, *id));
  }
  return absl::AlreadyExistsError(absl::StrCat("mkdir under ", root,
                                               ": 8 random names for prefix '",
                                               name_prefix, "' all existed"));
}

TestCgroup::~TestCgroup() {
  absl::Status status = Remove();
  if (!status.ok()) {
    std::fprintf(stderr, "TestCgroup: cleanup of %s failed: %s\n",
                 path_.c_str(), status.ToString().c_str());
  }
}

absl::StatusOr<TestCgroup*> TestCgroup::CreateChild(absl::string_view name) {
  EGRESS_RETURN_IF_ERROR(ValidateName(name, "child cgroup name"));
  if (removed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("CreateChild(", name, "): ", path_, " was removed"));
  }
  std::string path = absl::StrCat(path_, "/", name);
  if (::mkdir(path.c_str(), 0755) != 0)
    return ErrnoStatus(errno, "mkdir", path);
  absl::StatusOr<uint64_t> id = InodeOf(path);
  if (!id.ok()) {
    ::rmdir(path.c_str());
    return id.status();
  }
  children_.push_back(
      std::unique_ptr<TestCgroup>(new TestCgroup(root_, path, *id)));
  return children_.back().get();
}

absl::StatusOr<std::vector<int>> TestCgroup::Procs() const {
  return ReadProcs(path_);
}

absl::Status TestCgroup::KillAll() {
  absl::Time deadline = absl::Now() + kKillTimeout;
  std::string kill_file = absl::StrCat(path_, "/cgroup.kill");
  bool have_kill = ::access(kill_file.c_str(), F_OK) == 0;
  if (have_kill) {
    absl::Status status = WriteFile(kill_file, "1");
    if (!status.ok() && !absl::IsNotFound(status)) return status;
  }
  while (true) {
    absl::StatusOr<bool> populated = IsPopulated(path_);
    if (!populated.ok()) {
      if (absl::IsNotFound(populated.status())) return absl::OkStatus();
      return populated.status();
    }
    if (!*populated) return absl::OkStatus();
    std::vector<int> pids;
    EGRESS_RETURN_IF_ERROR(CollectProcs(path_, 0, &pids));
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("kill processes in ", path_, ": still populated after ",
                       absl::FormatDuration(kKillTimeout), "; pids: [",
                       absl::StrJoin(pids, ","), "]"));
    }
    // Without cgroup.kill, pids forked after the previous pass need another
    // round; with it, this only hits stragglers (harmless).
    for (int pid : pids) ::kill(pid, SIGKILL);
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status TestCgroup::Remove() {
  if (removed_) return absl::OkStatus();
  absl::Status kill_status = KillAll();
  absl::Status rm_status = RemoveTree(path_, 0, absl::Now() + kKillTimeout);
  if (!rm_status.ok()) {
    if (!kill_status.ok()) {
      return absl::Status(rm_status.code(),
                          absl::StrCat(rm_status.message(),
                                       "; after: ", kill_status.message()));
    }
    return rm_status;
  }
  // The whole subtree is gone, including the children this object owns.
  std::vector<TestCgroup*> stack = {this};
  while (!stack.empty()) {
    TestCgroup* cg = stack.back();
    stack.pop_back();
    cg->removed_ = true;
    for (auto& child : cg->children_) stack.push_back(child.get());
  }
  return absl::OkStatus();
}

void RemoveV1Trees(const std::string& relative) {
  std::error_code ec;
  for (const auto& h :
       std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    const std::string top = h.path().string() + relative;
    if (!std::filesystem::is_directory(top, ec)) continue;
    std::vector<std::string> dirs;
    for (auto it = std::filesystem::recursive_directory_iterator(top, ec);
         it != std::filesystem::recursive_directory_iterator() &&
         dirs.size() < 1000;
         it.increment(ec)) {
      if (it->is_directory(ec)) dirs.push_back(it->path().string());
    }
    std::sort(dirs.rbegin(), dirs.rend());  // children first
    for (const std::string& d : dirs) rmdir(d.c_str());
    rmdir(top.c_str());
  }
}

}  // namespace testing
}  // namespace egress
