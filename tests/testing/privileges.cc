#include "tests/testing/privileges.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace egress {
namespace testing {

absl::Status RequireRoot() {
  uid_t euid = ::geteuid();
  if (euid == 0) return absl::OkStatus();
  const char* ci = std::getenv("CI");
  if (ci == nullptr || *ci == '\0') {
    return absl::UnavailableError(absl::StrCat(
        "skipped: this test needs root (euid is ", euid,
        "); run it with sudo. Set CI=1 to turn this skip into a failure."));
  }
  return absl::PermissionDeniedError(
      absl::StrCat("this test needs root (euid is ", euid, ") and CI=", ci,
                   " is set, so it fails instead of skipping"));
}

}  // namespace testing
}  // namespace egress
