#include "userspace/cli/daemon_call.h"

#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"

namespace egress::cli {

absl::StatusOr<Reply> CallEgressd(const std::string& socket_path,
                                  const control::Request& request,
                                  absl::Duration timeout) {
  Reply reply;
  EGRESS_ASSIGN_OR_RETURN(
      reply.text,
      CallDaemonLine(socket_path, control::RequestText(request), timeout));
  EGRESS_ASSIGN_OR_RETURN(reply.response, DecodeReplyLine(request, reply.text));
  return reply;
}

}  // namespace egress::cli
