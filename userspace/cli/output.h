// The human text of egressd's typed responses for egressctl.
#ifndef EGRESS_USERSPACE_CLI_OUTPUT_H_
#define EGRESS_USERSPACE_CLI_OUTPUT_H_

#include <string>

#include "userspace/control/protocol.h"

namespace egress::cli {

struct TextOptions {
  bool verbose = false;  // `status verbose`
};

// The text for `response` (ends with a newline unless empty). Warnings of a
// response (a shadowed allow, a missing cgroup) are "warning: ..." lines.
std::string FormatResponse(const control::Response& response,
                           const TextOptions& options = {});

// For a rule edit (allow, deny, delete) of a target a file of egressd's
// --policy_dir defines ("" for others): the edit lasts until the directory
// is next reloaded. egressctl prints it on stderr, whatever the format.
std::string PolicyFileEditWarning(const control::Response& response);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_OUTPUT_H_
