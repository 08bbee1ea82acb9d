// `egressctl services`: the service names every egress rule may use (the
// built-in table and aliases), with the ports they stand for on this host.
#ifndef EGRESS_USERSPACE_CLI_SERVICES_TEXT_H_
#define EGRESS_USERSPACE_CLI_SERVICES_TEXT_H_

#include <string>

namespace egress::cli {

std::string ServicesText();

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_SERVICES_TEXT_H_
