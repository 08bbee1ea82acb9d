// unique_ptr owners of libbpf objects.
#ifndef EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_
#define EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_

#include <memory>

#include "egress_bpf.skel.h"

namespace egress {

struct SkeletonDeleter {
  void operator()(egress_bpf* skel) const { egress_bpf__destroy(skel); }
};
using SkeletonPtr = std::unique_ptr<egress_bpf, SkeletonDeleter>;

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_
