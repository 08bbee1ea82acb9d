// `egressctl run --user/--group`: who the command runs as. A command left
// root can write its pid to another cgroup's cgroup.procs (or remove its
// target) and so leave its policy; as another user it cannot. Names are
// looked up in the texts of /etc/passwd and /etc/group only, never through
// NSS (whose sources may be on the network).
#ifndef EGRESS_USERSPACE_CLI_RUN_IDENTITY_H_
#define EGRESS_USERSPACE_CLI_RUN_IDENTITY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace egress::cli {

struct RunIdentity {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary, the primary one included
  std::string name;              // "" for a uid /etc/passwd does not list
  bool from_sudo = false;        // from SUDO_UID / SUDO_GID, no --user
};

// What RunIdentityOf looks at besides the options.
struct RunIdentityInputs {
  std::string user;        // --user NAME|UID ("" when not given)
  std::string group;       // --group NAME|GID ("" when not given)
  std::string sudo_uid;    // $SUDO_UID ("" when not set)
  std::string sudo_gid;    // $SUDO_GID
  uint32_t euid = 0;       // egressctl's
  std::string passwd;      // the text of /etc/passwd
  std::string group_file;  // the text of /etc/group
};

// The identity the command takes: --user's (its primary group from
// /etc/passwd unless --group; its supplementary groups from /etc/group);
// without --user, when egressctl is root under sudo, the sudo caller's;
// otherwise nullopt (the command keeps egressctl's identity).
// InvalidArgument naming the option for an unknown name, a bad number, a
// uid /etc/passwd does not list given without --group, or --group without
// --user.
absl::StatusOr<std::optional<RunIdentity>> RunIdentityOf(
    const RunIdentityInputs& in);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_IDENTITY_H_
