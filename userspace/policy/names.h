// The one rule for the names operators give targets, policies and rules. The
// names end up in pin paths, file names, metric labels and command lines, so
// they are kept to a small, shell- and path-safe alphabet.
#ifndef EGRESS_USERSPACE_POLICY_NAMES_H_
#define EGRESS_USERSPACE_POLICY_NAMES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

// True for 1-64 ASCII letters, digits, '-', '_', '.' or '@', not starting
// with '.': a target is exported to NAME.yaml, and a policy directory holds
// no hidden files, so ".x" would not load back.
bool ValidName(absl::string_view name);

// OkStatus for a ValidName, else InvalidArgument
//   bad NOUN "NAME": use 1-64 letters, digits, '-', '_', '.' or '@', not
//   starting with '.'
// e.g. CheckName("a b") is `bad name "a b": ...` and
// CheckName("a b", "target name") is `bad target name "a b": ...`.
absl::Status CheckName(absl::string_view name, absl::string_view noun = "name");

// A systemd unit as an operator names one (`target add --unit`,
// `systemdUnit:` in policy files): letters, digits and "-_.:@\\", the
// characters of systemd's escaped unit names, not starting with '-' (egressd
// runs `systemctl show UNIT` as root, and systemctl would read such a name as
// an option). Only the characters: the suffix is the caller's. InvalidArgument:
//   bad unit name "NAME": ...
absl::Status CheckUnitName(absl::string_view unit);

// A user as an operator names one (`target add --user`, `user:` in policy
// files): a uid in decimal (0-4294967294; 4294967295 is the kernel's "no
// uid") or a user name as the passwd database holds it: 1-32 letters,
// digits, '_', '-' or '.', not starting with '-', maybe ending in '$'.
// Names are looked up by egressd (once, when the target is added); uids are
// taken as they are. InvalidArgument:
//   bad user "NAME": use a uid (0-4294967294) or a user name (...)
absl::Status CheckUser(absl::string_view user);
// The uid of a CheckUser-valid `user` written in digits; nullopt for a name.
std::optional<uint32_t> UidOfNumber(absl::string_view user);
// How a user target is shown: "user www-data (uid 33)" for a name, "uid
// 4000000001" for a uid given in digits.
std::string UserText(absl::string_view given, uint32_t uid);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_NAMES_H_
