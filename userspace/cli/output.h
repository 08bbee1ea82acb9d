// Text and JSON renderings of egressd's responses for egressctl.
#ifndef EGRESS_USERSPACE_CLI_OUTPUT_H_
#define EGRESS_USERSPACE_CLI_OUTPUT_H_

#include <string>

#include "nlohmann/json.hpp"

namespace egress::cli {

// The human text for the response to request `cmd` (ends with a newline
// unless empty).
std::string FormatResponse(const std::string& cmd,
                           const nlohmann::json& response);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_OUTPUT_H_
