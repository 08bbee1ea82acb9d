// UTF-8 validity of text read from files and users, for formats that carry
// text (YAML, JSON): a byte string that is not UTF-8 would come back from
// them changed (U+FFFD), so it is refused where it is read.
#ifndef EGRESS_USERSPACE_COMMON_UTF8_H_
#define EGRESS_USERSPACE_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace egress {

// The offset of the first byte that does not start a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF),
// or absl::string_view::npos when all of `text` is UTF-8.
size_t FirstInvalidUtf8(absl::string_view text);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_UTF8_H_
