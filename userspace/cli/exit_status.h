// egressctl's exit status, decided in this one place and documented from
// the same table (usage text, man page, docs/cli.md).
#ifndef EGRESS_USERSPACE_CLI_EXIT_STATUS_H_
#define EGRESS_USERSPACE_CLI_EXIT_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace egress::cli {

struct ExitStatusInfo {
  int code;
  absl::string_view meaning;
};

// 0 done; 2 bad input (InvalidArgument, NotFound, AlreadyExists: a parse
// error, an unknown command, option, service, target or rule number);
// 1 anything else (egressd not running, permission, the kernel).
absl::Span<const ExitStatusInfo> ExitStatuses();

int ExitCodeFor(const absl::Status& status);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_EXIT_STATUS_H_
