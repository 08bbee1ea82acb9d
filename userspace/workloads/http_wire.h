// The parts of HTTP/1.1 a client of a container runtime's unix socket needs:
// the response head and chunked transfer decoding (Docker's /events is one
// endless chunked body). Pure logic: bytes in, bytes or errors out.
//
// Why not cpp-httplib: Debian 12's version (0.11.4) cannot connect to a unix
// socket (AF_UNIX came in a later release), and the Engine API lives on one.
#ifndef EGRESS_USERSPACE_WORKLOADS_HTTP_WIRE_H_
#define EGRESS_USERSPACE_WORKLOADS_HTTP_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::workloads {

struct ResponseHead {
  int status = 0;
  bool chunked = false;
  std::optional<uint64_t> content_length;
};

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n" (the head without
// its body). InvalidArgument for anything else.
absl::StatusOr<ResponseHead> ParseResponseHead(absl::string_view head);

// "GET <target> HTTP/1.1" with Host and Connection: close.
std::string GetRequest(absl::string_view target);

// Decodes a chunked body fed in arbitrary pieces.
class ChunkedDecoder {
 public:
  // Appends the data `in` carries to *out; InvalidArgument for a malformed
  // chunk header (the stream cannot be trusted after that).
  absl::Status Feed(absl::string_view in, std::string* out);
  // The last (zero-size) chunk has been read.
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  std::string line_;
  uint64_t remaining_ = 0;
};

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_HTTP_WIRE_H_
