// Counts that stop at the largest value instead of wrapping: a learned
// count or a total that overflows stays "very many", never becomes small.
#ifndef EGRESS_USERSPACE_COMMON_SATURATING_ADD_H_
#define EGRESS_USERSPACE_COMMON_SATURATING_ADD_H_

#include <cstdint>
#include <limits>

namespace egress {

inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_SATURATING_ADD_H_
