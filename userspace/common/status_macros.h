// Status propagation macros. Bookworm's Abseil (20220623) has none; names
// follow upstream so they can be swapped for ABSL_RETURN_IF_ERROR later.
#ifndef EGRESS_USERSPACE_COMMON_STATUS_MACROS_H_
#define EGRESS_USERSPACE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define EGRESS_RETURN_IF_ERROR(expr)                          \
  do {                                                        \
    if (::absl::Status egress_st_ = (expr); !egress_st_.ok()) \
      return egress_st_;                                      \
  } while (0)

#define EGRESS_CONCAT_INNER_(a, b) a##b
#define EGRESS_CONCAT_(a, b) EGRESS_CONCAT_INNER_(a, b)
#define EGRESS_ASSIGN_OR_RETURN(lhs, rexpr)                                \
  EGRESS_ASSIGN_OR_RETURN_IMPL_(EGRESS_CONCAT_(egress_so_, __LINE__), lhs, \
                                rexpr)
#define EGRESS_ASSIGN_OR_RETURN_IMPL_(so, lhs, rexpr) \
  auto so = (rexpr);                                  \
  if (!so.ok()) return std::move(so).status();        \
  lhs = *std::move(so)

#endif  // EGRESS_USERSPACE_COMMON_STATUS_MACROS_H_
