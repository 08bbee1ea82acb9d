// Where `egressctl export` puts the policy files egressd wrote.
#ifndef EGRESS_USERSPACE_CLI_EXPORT_FILES_H_
#define EGRESS_USERSPACE_CLI_EXPORT_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "userspace/control/protocol.h"

namespace egress::cli {

// `response` is egressd's answer to `export`. With `dir` empty, the one file
// goes to stdout (several are an error naming --target and --dir). Otherwise
// each file is written to dir/NAME.yaml (dir created 0750 if missing) through a
// temporary file and a rename, and its path is printed.
absl::Status WriteExport(const control::ExportResponse& response,
                         const std::string& dir);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_EXPORT_FILES_H_
