#include "userspace/common/passwd.h"

#include <errno.h>
#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress {

absl::StatusOr<uint32_t> UidOfUserName(const std::string& name) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  for (;;) {
    struct passwd pw;
    struct passwd* found = nullptr;
    int err = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (err == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (err != 0) return ErrnoStatus(err, "getpwnam_r", name);
    if (found == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("no user named '", name, "' in the passwd database"));
    }
    return static_cast<uint32_t>(found->pw_uid);
  }
}

}  // namespace egress
