// Counting what a test's text (a daemon log, a command's output) says: how
// many times a line was logged is part of what several tests assert.
#ifndef EGRESS_TESTS_TESTING_TEXT_COUNT_H_
#define EGRESS_TESTS_TESTING_TEXT_COUNT_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace egress::testing {

// How many times `what` stands in `text`, overlapping ones included.
inline size_t CountOccurrences(absl::string_view text, absl::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != absl::string_view::npos;
       at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_TEXT_COUNT_H_
