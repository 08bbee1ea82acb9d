// The floor of the hooks: a program at every hook egress attaches, each
// letting everything through at once (bpf/empty_hooks.bpf.c), on a cgroup of
// its own. egress_bench measures every operation there too (`, empty hooks`
// rows), against its own baseline slices: what the kernel charges for
// running any program at those hooks, which no work inside egress's programs
// can take back. The sock_ops program asks for no callback; TCP still calls
// it for the ones it makes unasked (timeout and window init, ECN, connect,
// established).
#ifndef EGRESS_BENCH_EMPTY_HOOKS_H_
#define EGRESS_BENCH_EMPTY_HOOKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/kernel/target_programs.h"

struct bpf_link;
struct empty_hooks;  // empty_hooks.skel.h

namespace egress::bench {

// The empty programs attached to one cgroup; detached (links closed) and
// unloaded when destroyed.
class EmptyHooks {
 public:
  // Loads the empty programs and links one to `cgroup_dir` for every hook of
  // `hooks` (the set egress's programs were attached with).
  static absl::StatusOr<std::unique_ptr<EmptyHooks>> Attach(
      const std::string& cgroup_dir, const std::vector<HookSpec>& hooks);
  ~EmptyHooks();
  EmptyHooks(const EmptyHooks&) = delete;
  EmptyHooks& operator=(const EmptyHooks&) = delete;

 private:
  EmptyHooks() = default;
  ::empty_hooks* skel_ = nullptr;
  std::vector<::bpf_link*> links_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_EMPTY_HOOKS_H_
