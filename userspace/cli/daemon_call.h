// One typed request to egressd and its typed answer.
#ifndef EGRESS_USERSPACE_CLI_DAEMON_CALL_H_
#define EGRESS_USERSPACE_CLI_DAEMON_CALL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/control/protocol.h"

namespace egress::cli {

struct Reply {
  std::string text;  // the line as egressd sent it (`-o json` prints it)
  control::Response response;
};

// Sends EncodeRequest(request); a failed reply is its Status (egressd's
// code: InvalidArgument, NotFound, ...), a malformed one Internal.
absl::StatusOr<Reply> CallEgressd(const std::string& socket_path,
                                  const control::Request& request,
                                  absl::Duration timeout);

// CallEgressd for a request whose response type is known.
template <typename ResponseT>
absl::StatusOr<ResponseT> CallFor(const std::string& socket_path,
                                  const control::Request& request,
                                  absl::Duration timeout) {
  absl::StatusOr<Reply> reply = CallEgressd(socket_path, request, timeout);
  if (!reply.ok()) return reply.status();
  return std::get<ResponseT>(std::move(reply->response));
}

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_DAEMON_CALL_H_
