#include "userspace/cli/exit_status.h"

namespace egress::cli {
namespace {

constexpr int kDone = 0;
constexpr int kFailed = 1;
constexpr int kBadInput = 2;

constexpr ExitStatusInfo kStatuses[] = {
    {kDone, "done"},
    {kBadInput,
     "bad input: a parse error, an unknown command, option, service, target "
     "or rule number, or a target that already exists; nothing was changed"},
    {kFailed,
     "anything else: egressd not running, permission denied, a kernel "
     "error, 'verify' finding the policy not in force, or 'status' showing "
     "a target degraded (the self-check found it not enforced)"},
};

}  // namespace

absl::Span<const ExitStatusInfo> ExitStatuses() { return kStatuses; }

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kDone;
    // egressd answers NotFound for a target or rule that does not exist:
    // the operator typed a wrong name, as with a parse error.
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
      return kBadInput;
    default:
      return kFailed;
  }
}

}  // namespace egress::cli
