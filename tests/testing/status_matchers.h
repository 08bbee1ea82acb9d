// gtest macros for absl::Status and absl::StatusOr<T>. Bookworm's Abseil
// (20220623) ships no public status matchers.
//
//   ASSERT_OK(DoThing());
//   EXPECT_OK(MaybeValue());                 // StatusOr works too.
//   ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("x"));
//   EXPECT_STATUS(Parse("bad"), absl::StatusCode::kInvalidArgument, "line 3");
#ifndef EGRESS_TESTS_TESTING_STATUS_MATCHERS_H_
#define EGRESS_TESTS_TESTING_STATUS_MATCHERS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace egress {
namespace testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

inline ::testing::AssertionResult IsOk(const char* expr,
                                       const absl::Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << expr << " returned " << status.ToString() << ", want OK";
}

inline ::testing::AssertionResult HasStatus(const char* expr,
                                            const absl::Status& status,
                                            absl::StatusCode code,
                                            absl::string_view substring) {
  if (status.code() == code &&
      status.message().find(substring) != absl::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << expr << " returned " << status.ToString() << ", want code "
         << absl::StatusCodeToString(code) << " with message containing \""
         << substring << "\"";
}

}  // namespace internal
}  // namespace testing
}  // namespace egress

#define EGRESS_STATUS_CONCAT_INNER_(a, b) a##b
#define EGRESS_STATUS_CONCAT_(a, b) EGRESS_STATUS_CONCAT_INNER_(a, b)

#ifndef ASSERT_OK
#define ASSERT_OK(expr)                                                     \
  GTEST_ASSERT_(::egress::testing::internal::IsOk(                          \
                    #expr, ::egress::testing::internal::GetStatus((expr))), \
                GTEST_FATAL_FAILURE_)
#endif

#ifndef EXPECT_OK
#define EXPECT_OK(expr)                                                     \
  GTEST_ASSERT_(::egress::testing::internal::IsOk(                          \
                    #expr, ::egress::testing::internal::GetStatus((expr))), \
                GTEST_NONFATAL_FAILURE_)
#endif

#ifndef EXPECT_STATUS
#define EXPECT_STATUS(expr, code, substring)                               \
  GTEST_ASSERT_(::egress::testing::internal::HasStatus(                    \
                    #expr, ::egress::testing::internal::GetStatus((expr)), \
                    (code), (substring)),                                  \
                GTEST_NONFATAL_FAILURE_)
#endif

#ifndef ASSERT_OK_AND_ASSIGN
// `lhs` may declare a variable: ASSERT_OK_AND_ASSIGN(auto x, F());
// Only usable in functions returning void (like every ASSERT_*).
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                    \
  ASSERT_OK_AND_ASSIGN_IMPL_(EGRESS_STATUS_CONCAT_(egress_sor_, __LINE__), \
                             lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(sor, lhs, expr)                      \
  auto sor = (expr);                                                    \
  GTEST_ASSERT_(::egress::testing::internal::IsOk(#expr, sor.status()), \
                GTEST_FATAL_FAILURE_);                                  \
  lhs = *std::move(sor)
#endif

#endif  // EGRESS_TESTS_TESTING_STATUS_MATCHERS_H_
