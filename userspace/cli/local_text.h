// Texts egressctl prints without asking egressd, generated from its tables:
// `egressctl completion bash` (commands, sub-commands, options, option values
// and service names, so it completes exactly what the parser accepts) and
// `egressctl services` (the service names rules may use, with the ports they
// stand for on this host).
#ifndef EGRESS_USERSPACE_CLI_LOCAL_TEXT_H_
#define EGRESS_USERSPACE_CLI_LOCAL_TEXT_H_

#include <string>

namespace egress::cli {

std::string BashCompletion();
std::string ServicesText();

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_LOCAL_TEXT_H_
