// The control channel between egressctl and egressd: one JSON object per
// line over a Unix stream socket, one request and one response per
// connection. Only root may talk to egressd (peer credentials are checked).
#ifndef EGRESS_USERSPACE_CONTROL_CONTROL_SOCKET_H_
#define EGRESS_USERSPACE_CONTROL_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "userspace/common/unique_fd.h"
#include "userspace/control/protocol.h"

namespace egress {

inline constexpr char kDefaultSocketPath[] = "/run/egress/egressd.sock";

// Response encoding of a Status: {"ok":true,...} or
// {"ok":false,"code":<absl code>,"error":"..."}.
nlohmann::json ErrorResponse(const absl::Status& status);
// The Status carried by a response (OK when "ok" is true).
absl::Status ResponseStatus(const nlohmann::json& response);

// Client: sends `request`, returns the response. Unavailable when egressd
// is not listening at `socket_path` (with a hint to start it).
// DeadlineExceeded when egressd (stopped, hung) did not accept, take the
// request or answer within `timeout`, which bounds the whole call: the
// message says whether the request may still be applied (egressd has it
// whole) or was not (it had not taken it whole).
absl::StatusOr<nlohmann::json> CallDaemon(const std::string& socket_path,
                                          const nlohmann::json& request,
                                          absl::Duration timeout);
// The same with the request's text already written (control::RequestText),
// one line without its newline.
absl::StatusOr<nlohmann::json> CallDaemonText(const std::string& socket_path,
                                              absl::string_view request_text,
                                              absl::Duration timeout);
// CallDaemonText's reply as egressd wrote it, one line without its newline,
// not parsed (DecodeReplyLine, ParseResponse).
absl::StatusOr<std::string> CallDaemonLine(const std::string& socket_path,
                                           absl::string_view request_text,
                                           absl::Duration timeout);
// One reply line as JSON, as CallDaemonText parses it: InvalidArgument
// unless it is a JSON object.
absl::StatusOr<nlohmann::json> ParseResponse(const std::string& line);
// The reply to `request` decoded: ParseResponse, ResponseStatus, then
// control::DecodeResponse, the same response or the same error, without
// nlohmann::json's tree for a successful reply simdjson's DOM reads alike
// (control::ParseForView): the reply to an `apply` of 100,000 rules lists
// each added rule. A failed reply takes the tree's way.
absl::StatusOr<control::Response> DecodeReplyLine(
    const control::Request& request, const std::string& line);

// Client of a streaming request (`events --follow`): sends `request`, checks
// the first response line and passes the rendered records of its "lines"
// array (the backlog) to `on_line`, then every further line as egressd
// wrote it, until egressd closes the connection or `on_line` returns false.
// The first response's "warning", if any, goes to `on_warning` (may be
// null) before the backlog. The request and the first response are bounded
// by `first_answer_timeout` (as CallDaemon's); the records after it are not.
absl::Status StreamFromDaemon(
    const std::string& socket_path, const nlohmann::json& request,
    const std::function<bool(const std::string&)>& on_line,
    const std::function<void(const std::string&)>& on_warning = nullptr,
    absl::Duration first_answer_timeout = absl::InfiniteDuration());

// Server side.
class ControlListener {
 public:
  // Binds `socket_path` (mode 0600; its directory is created 0755 if
  // missing). A stale socket file is replaced; a live one is an error
  // (AlreadyExists: another egressd is running there), and so is anything
  // at the path that is not a socket (FailedPrecondition "not a socket":
  // it is left as it is).
  static absl::StatusOr<ControlListener> Listen(const std::string& socket_path);
  ControlListener(ControlListener&&) = default;
  ControlListener& operator=(ControlListener&&) = default;
  // Removes the socket file, only if it is still the one this listener
  // bound: a path taken since by another egressd or an operator's file is
  // theirs.
  ~ControlListener();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Accepts one pending connection (non-blocking listener).
  absl::StatusOr<UniqueFd> Accept() const;

  // What is at the path now. The file this listener bound is known by its
  // device and inode, so a socket bound there since by anyone else (another
  // egressd started meanwhile) is never taken for ours.
  enum class PathState {
    kOurs,     // the socket file this listener bound
    kMissing,  // nothing (removed by tmpfiles, an operator, a /run cleanup)
    kTaken,    // something else: `what` says what it is
  };
  struct PathCheck {
    PathState state = PathState::kOurs;
    std::string what;  // for kTaken: "a regular file", ...
  };
  // Also remembers the mode and owner of our file while it is there, for
  // Rebind.
  PathCheck CheckPath();
  // The device and inode of the socket file this listener bound last (its
  // path checked against them by others: ours, removed or replaced).
  dev_t bound_dev() const { return dev_; }
  ino_t bound_ino() const { return ino_; }
  // After kMissing: binds a new socket at the path (its directory made again
  // if it went too) with the mode and owner our file last had, and listens
  // on it instead of the old one (closed; the caller accepts what was
  // waiting on it first). Never replaces anything: a file that appeared at
  // the path meanwhile makes it fail (bind: Address already in use), and
  // the old socket stays.
  absl::Status Rebind();

 private:
  ControlListener() = default;
  // Binds and listens at path_ with mode_, then owner uid_/gid_ if they
  // are not ours, and records the new file's identity.
  absl::StatusOr<UniqueFd> BindNew();
  UniqueFd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  mode_t mode_ = 0600;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// Reads one request line (bounded size and time) from a connection and
// checks that the peer is root: PermissionDenied otherwise.
absl::StatusOr<nlohmann::json> ReadRequest(int conn_fd, absl::Duration timeout);
// The SO_PEERCRED check of ReadRequest: PermissionDenied unless root.
absl::Status CheckPeerIsRoot(int conn_fd);
// Non-blocking half of ReadRequest, for a server loop that must not wait on
// a slow client: appends what is available to *buf and returns the request
// line once it is whole (or the stream ended), nullopt while it is
// incomplete. Errors as ReadRequest. ParseRequest makes it JSON, wherever
// the server wants to spend that time (seconds for a fleet's policies).
absl::StatusOr<std::optional<std::string>> ReadAvailableLine(int conn_fd,
                                                             std::string* buf);
// One request line as JSON: InvalidArgument unless it is a JSON object.
absl::StatusOr<nlohmann::json> ParseRequest(const std::string& line);
// One request line decoded: control::DecodeRequest(ParseRequest(line)), the
// same request or the same error, without nlohmann::json's tree for the
// text simdjson's DOM reads alike (control::ParseForView): an `apply` of
// 100,000 rules is a line of 15-20 MB, and its tree cost egressd more CPU
// than the rest of the decoding.
absl::StatusOr<control::Request> DecodeRequestLine(const std::string& line);
// Writes one response line; DeadlineExceeded if the client has not taken it
// within 10 s (egressd never waits longer on one client).
absl::Status WriteResponse(int conn_fd, const nlohmann::json& response);

}  // namespace egress

#endif  // EGRESS_USERSPACE_CONTROL_CONTROL_SOCKET_H_
