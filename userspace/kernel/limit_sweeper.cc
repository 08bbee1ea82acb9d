#include "userspace/kernel/limit_sweeper.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include "userspace/common/errno_status.h"

namespace egress {

absl::StatusOr<LimitSweeper> LimitSweeper::Load(const char* maps_dir) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps_dir);
  limits_sweep* skel = limits_sweep__open_opts(&opts);
  if (skel == nullptr)
    return ErrnoStatus(errno, "open BPF object", "limits_sweep");
  // The sweep must read the maps the hooks write, never a copy: every map
  // is pinned by name, so the load reuses the pins in maps_dir.
  if (int err = limits_sweep__load(skel); err != 0) {
    limits_sweep__destroy(skel);
    return ErrnoStatus(-err, "load the held-back record sweep against",
                       maps_dir);
  }
  return LimitSweeper(skel);
}

absl::StatusOr<egress_sweep_args> LimitSweeper::Sweep() {
  egress_sweep_args args{};
  args.first_set = 0;
  args.sets = EGRESS_MAX_EVENT_LIMITS / EGRESS_EVENT_LIMIT_WAYS;
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args,
              .ctx_size_in = sizeof(args));
  if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.sweep_held_back),
                             &run) != 0) {
    return ErrnoStatus(errno, "BPF_PROG_TEST_RUN", "sweep_held_back");
  }
  return args;
}

}  // namespace egress
