// A throwaway cgroup v2 directory for privileged tests.
//
//   ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("connect4"));
//   ASSERT_OK_AND_ASSIGN(TestCgroup* child, cg->CreateChild("inner"));
//   RunInCgroup(child->path(), [] { return TcpConnect("127.0.0.1", 1); });
//
// Destruction (or Remove()) kills every process in the subtree and removes the
// directories depth-first, including sub-cgroups created by the code under
// test.
#ifndef EGRESS_TESTS_TESTING_CGROUP_FIXTURE_H_
#define EGRESS_TESTS_TESTING_CGROUP_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress {
namespace testing {

class TestCgroup {
 public:
  // Creates <cgroup2 root>/egress-test-<name_prefix>-<random>. The cgroup2
  // root comes from /proc/self/mountinfo.
  static absl::StatusOr<std::unique_ptr<TestCgroup>> Create(
      absl::string_view name_prefix);

  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  ~TestCgroup();  // Best effort Remove(); failures are printed to stderr.

  // Creates path()/<name>. The child is owned by this object and removed with
  // it; the pointer stays valid until this object is removed.
  absl::StatusOr<TestCgroup*> CreateChild(absl::string_view name);

  // Kills everything in the subtree (cgroup.kill when the kernel has it, else
  // SIGKILL to each pid in cgroup.procs), waits up to 5 s for it to empty, and
  // removes all directories below and including path(), depth-first.
  // Idempotent.
  absl::Status Remove();

  // Kills the processes in the subtree without removing anything.
  absl::Status KillAll();

  // Absolute directory, e.g. /sys/fs/cgroup/unified/egress-test-x-1a2b3c4d.
  const std::string& path() const { return path_; }
  // Relative to the cgroup2 root, starting with '/': /egress-test-x-1a2b3c4d.
  const std::string& relative_path() const { return relative_path_; }
  // Cgroup id as used by bpf_get_current_cgroup_id(): the directory's inode.
  uint64_t id() const { return id_; }

  // Pids currently listed in cgroup.procs of this cgroup (not descendants).
  absl::StatusOr<std::vector<int>> Procs() const;

 private:
  TestCgroup(std::string root, std::string path, uint64_t id);

  std::string root_;
  std::string path_;
  std::string relative_path_;
  uint64_t id_;
  bool removed_ = false;
  std::vector<std::unique_ptr<TestCgroup>> children_;
};

// runc also makes the cgroups of a container's --cgroup-parent in the v1
// hierarchies of a hybrid layout (/sys/fs/cgroup/<controller><relative>),
// and leaves the parents behind when the container goes: removes those
// trees (at most 1,000 directories, children first). Missing is no error.
void RemoveV1Trees(const std::string& relative);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_CGROUP_FIXTURE_H_
