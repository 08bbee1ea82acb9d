#include "bench/empty_hooks.h"

#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "empty_hooks.skel.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/unix_hooks.h"

namespace egress::bench {

absl::StatusOr<std::unique_ptr<EmptyHooks>> EmptyHooks::Attach(
    const std::string& cgroup_dir, const std::vector<HookSpec>& hooks) {
  std::unique_ptr<EmptyHooks> out(new EmptyHooks());
  out->skel_ = empty_hooks__open();
  if (out->skel_ == nullptr) {
    return ErrnoStatus(errno, "open BPF object", "empty_hooks");
  }
  if (absl::Status s =
          PrepareUnixPrograms(out->skel_->obj, KernelHasUnixHooks());
      !s.ok()) {
    return s;
  }
  if (int err = empty_hooks__load(out->skel_); err != 0) {
    return ErrnoStatus(-err, "load BPF object", "empty_hooks");
  }
  UniqueFd cg(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return ErrnoStatus(errno, "open cgroup", cgroup_dir);
  for (const HookSpec& h : hooks) {
    bpf_program* prog =
        bpf_object__find_program_by_name(out->skel_->obj, h.program);
    if (prog == nullptr) {
      return absl::InternalError(
          absl::StrCat("empty_hooks has no program ", h.program));
    }
    bpf_link* link = bpf_program__attach_cgroup(prog, cg.get());
    if (link == nullptr) {
      return ErrnoStatus(errno, absl::StrCat("attach empty ", h.name),
                         cgroup_dir);
    }
    out->links_.push_back(link);
  }
  return out;
}

EmptyHooks::~EmptyHooks() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  empty_hooks__destroy(skel_);
}

}  // namespace egress::bench
