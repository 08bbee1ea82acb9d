// Converts a failed syscall or libbpf call into an absl::Status, once, at the
// call site.
#ifndef EGRESS_USERSPACE_COMMON_ERRNO_STATUS_H_
#define EGRESS_USERSPACE_COMMON_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress {

// `err` is a positive errno (libbpf returns -err: pass -ret). The message reads
// "<op>(<object>): <strerror>", e.g. "bpf_map_update_elem(rules): No
// space left on device". The kernel-internal ENOTSUPP (524) becomes
// Unimplemented.
absl::Status ErrnoStatus(int err, absl::string_view op,
                         absl::string_view object = {});

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_ERRNO_STATUS_H_
