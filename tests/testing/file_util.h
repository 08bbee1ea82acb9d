// Small file helpers for cgroupfs, procfs and sysctl files.
#ifndef EGRESS_TESTS_TESTING_FILE_UTIL_H_
#define EGRESS_TESTS_TESTING_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace egress {
namespace testing {

// Reads a whole (small, at most 16 MiB) file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `content` with a single write(2) to an existing file (O_WRONLY, no
// O_CREAT, no O_TRUNC): the way cgroupfs and sysctl files must be written.
absl::Status WriteFile(const std::string& path, const std::string& content);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_FILE_UTIL_H_
