// The one way a fuzz target reports a broken invariant: the message on
// stderr, then abort(), which libFuzzer records as a crash with the input
// that caused it (the fuzz targets have no test framework to report to).
#ifndef EGRESS_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_
#define EGRESS_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace egress::fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const char* what,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n%s\n", file, line, what,
               detail.c_str());
  std::abort();
}

}  // namespace egress::fuzz

// FUZZ_CHECK(condition, detail): `detail` (a std::string expression) is only
// built when the condition fails.
#define FUZZ_CHECK(cond, detail)                                            \
  do {                                                                      \
    if (!(cond)) ::egress::fuzz::Fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

#endif  // EGRESS_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_
