// unique_ptr owners of libbpf objects: each frees its object with the
// libbpf call made for it, on every path, so no caller writes a destructor
// or a cleanup for one.
#ifndef EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_
#define EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_

#include <bpf/libbpf.h>

#include <memory>

#include "egress_bpf.skel.h"

namespace egress {

struct SkeletonDeleter {
  void operator()(egress_bpf* skel) const { egress_bpf__destroy(skel); }
};
using SkeletonPtr = std::unique_ptr<egress_bpf, SkeletonDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_LIBBPF_PTR_H_
