// User names through the passwd database (NSS: whatever nsswitch.conf says
// for "passwd"), for user targets named by name.
#ifndef EGRESS_USERSPACE_COMMON_PASSWD_H_
#define EGRESS_USERSPACE_COMMON_PASSWD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace egress {

// The uid of the user `name` (getpwnam_r). NotFound naming the user when
// the database has no such user; the errno status of the lookup when it
// failed (an NSS source that cannot be reached).
absl::StatusOr<uint32_t> UidOfUserName(const std::string& name);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_PASSWD_H_
