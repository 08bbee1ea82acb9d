// `egressctl man`: egressctl(8) in roff, generated from the command table,
// the option table and the exit statuses (the build installs its output).
#ifndef EGRESS_USERSPACE_CLI_MAN_PAGE_H_
#define EGRESS_USERSPACE_CLI_MAN_PAGE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace egress::cli {

std::string ManPage();

// `text` safe as roff body text: backslashes and hyphens escaped, a line
// starting with '.' or '\'' protected.
std::string RoffEscape(absl::string_view text);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_MAN_PAGE_H_
