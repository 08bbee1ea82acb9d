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
// The head is read with the first bytes of the answer, whenever they come:
// Podman's compat API (4.3) sends it together with the first event only.
class UnixLineStream {
 public:
  // Connects and sends the request (each at most `timeout_ms`).
  static absl::StatusOr<UnixLineStream> Open(const std::string& socket_path,
                                             const std::string& target,
                                             int timeout_ms = 5000);
  int fd() const { return fd_.get(); }
  // Reads what is there (call when fd() is readable) and returns the
  // complete lines (none while the head is still coming). Unavailable when
  // the server closed the stream or broke the head or the encoding;
  // NotFound or Internal for an answer that is not 2xx.
  absl::StatusOr<std::vector<std::string>> ReadLines();
  // The head has come (the server has taken the request).
  bool has_head() const { return have_head_; }

 private:
  UniqueFd fd_;
  std::string target_;
  bool have_head_ = false;
  ResponseHead head_;
  ChunkedDecoder chunks_;
  std::string buffered_;  // raw bytes until the head is complete
  std::string partial_;   // decoded bytes of an unfinished line
};

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_UNIX_HTTP_H_
