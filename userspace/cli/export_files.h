// Where `egressctl export` puts the policy files egressd wrote.
#ifndef EGRESS_USERSPACE_CLI_EXPORT_FILES_H_
#define EGRESS_USERSPACE_CLI_EXPORT_FILES_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "userspace/control/protocol.h"

namespace egress::cli {

// `response` is egressd's answer to `export`. With `dir` empty, the one file
// goes to stdout (several are an error naming --target and --dir). Otherwise
// each file is written to dir/NAME.yaml (dir created 0750 if missing) through a
// temporary file and a rename, and its path is printed. An existing `dir`
// must pass CheckExportDir: the files are policies someone will apply, and
// whoever may write the directory could swap them before that.
absl::Status WriteExport(const control::ExportResponse& response,
                         const std::string& dir);

// OkStatus when the directory `dir`, with status `st`, is owned by `euid`
// and not writable by group or others. FailedPrecondition otherwise:
//   --dir D: owned by uid 1000, not by you (uid 0); export to a directory
//   of your own
//   --dir D: writable by group or others (mode 0777); ...
absl::Status CheckExportDir(const std::string& dir, const struct stat& st,
                            uid_t euid);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_EXPORT_FILES_H_
