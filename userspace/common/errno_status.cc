#include "userspace/common/errno_status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace egress {
namespace {
// Not in <errno.h>: the kernel returns it for unsupported BPF features.
constexpr int kEnotsupp = 524;
}  // namespace

absl::Status ErrnoStatus(int err, absl::string_view op,
                         absl::string_view object) {
  if (err < 0) err = -err;
  std::string where =
      object.empty() ? std::string(op) : absl::StrCat(op, "(", object, ")");
  if (err == kEnotsupp) {
    return absl::UnimplementedError(
        absl::StrCat(where, ": operation not supported by this kernel"));
  }
  // ErrnoToStatus appends ": <strerror>" itself.
  return absl::ErrnoToStatus(err, where);
}

}  // namespace egress
