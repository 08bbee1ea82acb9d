// GET requests to an HTTP server on a unix socket (a container runtime's
// API socket): whole answers, and one endless chunked answer read as lines.
#ifndef EGRESS_USERSPACE_WORKLOADS_UNIX_HTTP_H_
#define EGRESS_USERSPACE_WORKLOADS_UNIX_HTTP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/common/unique_fd.h"
#include "userspace/workloads/http_wire.h"

namespace egress::workloads {

// GET `target` from the server on `socket_path`; the body of a 2xx answer.
// Unavailable when the socket cannot be reached, NotFound for a 404,
// Internal for another status; every read and write waits at most
// `timeout_ms`.
absl::StatusOr<std::string> UnixGet(const std::string& socket_path,
                                    const std::string& target,
                                    int timeout_ms = 5000);

// A GET whose answer goes on (Docker's /events): its lines as they come.
class UnixLineStream {
 public:
  // Connects, sends the request and reads the head (at most `timeout_ms`).
  static absl::StatusOr<UnixLineStream> Open(const std::string& socket_path,
                                             const std::string& target,
                                             int timeout_ms = 5000);
  int fd() const { return fd_.get(); }
  // Reads what is there (call when fd() is readable) and returns the
  // complete lines. Unavailable when the server closed the stream or broke
  // the encoding.
  absl::StatusOr<std::vector<std::string>> ReadLines();

 private:
  UniqueFd fd_;
  ResponseHead head_;
  ChunkedDecoder chunks_;
  std::string buffered_;  // raw bytes after the head (read with it)
  std::string partial_;   // decoded bytes of an unfinished line
};

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_UNIX_HTTP_H_
