#include "userspace/cli/daemon_call.h"

#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"

namespace egress::cli {

absl::StatusOr<Reply> CallEgressd(const std::string& socket_path,
                                  const control::Request& request,
                                  absl::Duration timeout) {
  Reply reply;
  EGRESS_ASSIGN_OR_RETURN(
      reply.json,
      CallDaemonText(socket_path, control::RequestText(request), timeout));
  EGRESS_RETURN_IF_ERROR(ResponseStatus(reply.json));
  EGRESS_ASSIGN_OR_RETURN(reply.response,
                          control::DecodeResponse(request, reply.json));
  return reply;
}

}  // namespace egress::cli
