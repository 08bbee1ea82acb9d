// `egressctl completion bash`: a bash completion script generated from the
// command table (commands, sub-commands, options, option values and service
// names), so it completes exactly what the parser accepts.
#ifndef EGRESS_USERSPACE_CLI_COMPLETION_H_
#define EGRESS_USERSPACE_CLI_COMPLETION_H_

#include <string>

namespace egress::cli {

std::string BashCompletion();

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_COMPLETION_H_
