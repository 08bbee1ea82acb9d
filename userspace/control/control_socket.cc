#include "userspace/control/control_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

constexpr size_t kMaxMessage = 64 << 20;  // a 100,000-rule policy fits

// The answer egressd did not finish: `had_part` when some of it came.
absl::Status ClosedBeforeAnswer(bool had_part) {
  return absl::UnavailableError(absl::StrCat(
      "egressd stopped or closed the connection before ",
      had_part ? "its answer was complete" : "answering",
      "; if it was a change, it may or may not have been applied: check with "
      "`egressctl list` or `egressctl status`"));
}

absl::StatusOr<sockaddr_un> UnixAddr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// The socket's directory, made 0755 if missing (/run/egress, also when a
// /run cleanup took it while egressd ran).
absl::Status MakeSocketDir(const std::string& socket_path) {
  size_t slash = socket_path.rfind('/');
  if (slash == std::string::npos || slash == 0) return absl::OkStatus();
  std::string dir = socket_path.substr(0, slash);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir", dir);
  }
  return absl::OkStatus();
}

// What lstat found, for an error naming it ("a regular file").
const char* FileTypeName(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a socket";
}

// How a stream that ends without a newline is read.
enum class AtEof {
  // A request: the rest is the line (`echo -n '{...}' | nc -U` works).
  kRestIsALine,
  // An answer: egressd writes whole lines, so the rest is the head of an
  // answer it did not finish (it stopped or dropped the connection).
  kRestIsCutOff,
};

// Appends what `fd` has now to *buf (never waits) and takes the first line
// off it: the line, nullopt while none is complete, or, when the peer closed
// without a newline, as `at_eof` says. Bounded by kMaxMessage.
absl::StatusOr<std::optional<std::string>> TakeLine(int fd, std::string* buf,
                                                    AtEof at_eof) {
  char chunk[65536];
  size_t searched = 0;  // no newline before this offset
  while (true) {
    size_t nl = buf->find('\n', searched);
    if (nl != std::string::npos) {
      if (nl + 1 == buf->size()) {
        // The line is all there is (one request, one answer): taken, not
        // copied; it may be tens of MB.
        std::string line = std::exchange(*buf, std::string());
        line.resize(nl);
        return line;
      }
      std::string line = buf->substr(0, nl);
      buf->erase(0, nl + 1);
      return line;
    }
    searched = buf->size();
    if (buf->size() > kMaxMessage) {
      return absl::ResourceExhaustedError("control message too large");
    }
    ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return std::optional<std::string>();
    }
    if (n < 0) return ErrnoStatus(errno, "read", "control socket");
    if (n == 0) {
      if (at_eof == AtEof::kRestIsCutOff) {
        // Unavailable (exit 1, "egressd not running"), never the
        // InvalidArgument of a line that does not parse (exit 2, "nothing
        // was changed"): a change may have been applied and saved.
        return ClosedBeforeAnswer(!buf->empty());
      }
      if (buf->empty()) return absl::UnavailableError("control socket closed");
      return std::exchange(*buf, std::string());
    }
    buf->append(chunk, n);
  }
}

// TakeLine, waiting for the line until `deadline`. `buf` keeps what came
// after it (a stream of lines); null for a single answer.
absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline, AtEof at_eof,
                                     std::string* buf = nullptr) {
  std::string own;
  if (buf == nullptr) buf = &own;
  while (true) {
    EGRESS_ASSIGN_OR_RETURN(std::optional<std::string> line,
                            TakeLine(fd, buf, at_eof));
    if (line.has_value()) return *std::move(line);
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) {
      return absl::DeadlineExceededError("control socket: timed out");
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000))) < 0 &&
        errno != EINTR) {
      return ErrnoStatus(errno, "poll", "control socket");
    }
  }
}

// Sends all of `data`, waiting for room until `deadline`.
absl::Status WriteAll(int fd, absl::string_view data,
                      absl::Time deadline = absl::InfiniteFuture()) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (ms <= 0) {
        return absl::DeadlineExceededError(
            "control socket: the peer does not read");
      }
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return absl::UnavailableError(
          "control socket: the peer closed the connection");
    }
    if (n < 0) return ErrnoStatus(errno, "write", "control socket");
    off += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ParseJson(const std::string& line) {
  nlohmann::json j =
      nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("control message is not a JSON object");
  }
  return j;
}

// "egressd at PATH did not ... within 30s": how long egressctl waited, and
// the flag that changes it.
std::string NoAnswerWithin(const std::string& socket_path,
                           absl::string_view what, absl::Duration timeout) {
  return absl::StrCat("egressd at ", socket_path, " did not ", what, " within ",
                      absl::FormatDuration(timeout),
                      " (--timeout; is it stopped or hung?)");
}

// No answer in time to a request egressd has whole: it may be applied yet
// (a stopped egressd reads it when it is continued).
absl::Status MayStillApply(const std::string& socket_path,
                           absl::Duration timeout) {
  return absl::DeadlineExceededError(
      absl::StrCat(NoAnswerWithin(socket_path, "answer", timeout),
                   "; it has the whole request: if it was a change, it may "
                   "still be applied: check with `egressctl list` or "
                   "`egressctl status` once egressd answers"));
}

// Connects to egressd and writes `request` as one line, within `timeout`
// (connect waits while egressd's backlog is full; the request waits for
// egressd to read it). `unreachable_hint` ends the error when nothing
// listens at `socket_path`.
absl::StatusOr<UniqueFd> SendRequest(const std::string& socket_path,
                                     absl::string_view request_text,
                                     absl::string_view unreachable_hint,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  EGRESS_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddr(socket_path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket", "AF_UNIX");
  // A Unix connect to a full backlog waits for SO_SNDTIMEO, then EAGAIN.
  if (timeout < absl::InfiniteDuration()) {
    timeval tv = absl::ToTimeval(std::max(timeout, absl::Milliseconds(1)));
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    int err = errno;
    if (err == EAGAIN) {
      return absl::DeadlineExceededError(absl::StrCat(
          NoAnswerWithin(socket_path, "accept the connection", timeout),
          ": nothing was sent, so nothing was applied"));
    }
    return absl::UnavailableError(absl::StrCat("cannot reach egressd at ",
                                               socket_path, ": ", strerror(err),
                                               unreachable_hint));
  }
  // The text, then its newline: not a copy of a request of tens of MB.
  absl::Status sent = WriteAll(fd.get(), request_text, deadline);
  // egressd closed before it had read the request to its newline (it
  // stopped), or did not read it whole in time: it runs no request it has
  // not read whole, and a request cut short does not parse.
  if (absl::IsUnavailable(sent)) {
    return absl::UnavailableError(
        "egressd stopped or closed the connection before taking the whole "
        "request, so it was not applied: check with `egressctl status`");
  }
  if (absl::IsDeadlineExceeded(sent)) {
    return absl::DeadlineExceededError(absl::StrCat(
        NoAnswerWithin(socket_path, "take the whole request", timeout),
        ", so it was not applied: check with `egressctl status`"));
  }
  EGRESS_RETURN_IF_ERROR(sent);
  // The text is whole: egressd takes it as the request when the connection
  // ends, with or without its newline.
  sent = WriteAll(fd.get(), "\n", deadline);
  if (absl::IsDeadlineExceeded(sent))
    return MayStillApply(socket_path, timeout);
  if (absl::IsUnavailable(sent)) return ClosedBeforeAnswer(false);
  EGRESS_RETURN_IF_ERROR(sent);
  return fd;
}

}  // namespace

nlohmann::json ErrorResponse(const absl::Status& status) {
  return {{"ok", false},
          {"code", static_cast<int>(status.code())},
          {"error", std::string(status.message())}};
}

absl::Status ResponseStatus(const nlohmann::json& response) {
  if (response.value("ok", false)) return absl::OkStatus();
  int code =
      response.value("code", static_cast<int>(absl::StatusCode::kUnknown));
  if (code <= 0 ||
      code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      response.value("error", std::string("egressd failed")));
}

absl::StatusOr<nlohmann::json> CallDaemon(const std::string& socket_path,
                                          const nlohmann::json& request,
                                          absl::Duration timeout) {
  return CallDaemonText(socket_path, policy::JsonText(request), timeout);
}

absl::StatusOr<nlohmann::json> CallDaemonText(const std::string& socket_path,
                                              absl::string_view request_text,
                                              absl::Duration timeout) {
  EGRESS_ASSIGN_OR_RETURN(std::string line,
                          CallDaemonLine(socket_path, request_text, timeout));
  return ParseJson(line);
}

absl::StatusOr<std::string> CallDaemonLine(const std::string& socket_path,
                                           absl::string_view request_text,
                                           absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  EGRESS_ASSIGN_OR_RETURN(
      UniqueFd fd,
      SendRequest(socket_path, request_text,
                  absl::StrCat(" (is egressd running? start it with: egressd "
                               "--socket ",
                               socket_path, ")"),
                  timeout));
  shutdown(fd.get(), SHUT_WR);
  absl::StatusOr<std::string> line =
      ReadLine(fd.get(), deadline, AtEof::kRestIsCutOff);
  if (absl::IsDeadlineExceeded(line.status())) {
    return MayStillApply(socket_path, timeout);
  }
  return line;
}

absl::StatusOr<nlohmann::json> ParseResponse(const std::string& line) {
  return ParseJson(line);
}

absl::StatusOr<control::Response> DecodeReplyLine(
    const control::Request& request, const std::string& line) {
  {
    simdjson::dom::parser parser;
    std::optional<control::SimdjsonView> root =
        control::ParseLineForView(parser, line);
    // ResponseStatus of a reply whose "ok" (the last, as the tree keeps it)
    // is true is OK, whatever else the reply holds.
    std::optional<control::SimdjsonView> ok =
        root ? root->Find("ok") : std::nullopt;
    if (ok && ok->is_boolean() && ok->boolean()) {
      return control::DecodeResponseDom(request, *root);
    }
  }
  // Not JSON, not an object, JSON the DOM does not read as the tree would,
  // or a failed reply (small; its "code" and "error" read as the tree
  // reads them): the tree's way.
  EGRESS_ASSIGN_OR_RETURN(nlohmann::json message, ParseResponse(line));
  EGRESS_RETURN_IF_ERROR(ResponseStatus(message));
  return control::DecodeResponse(request, message);
}

absl::Status StreamFromDaemon(
    const std::string& socket_path, const nlohmann::json& request,
    const std::function<bool(const std::string&)>& on_line,
    const std::function<void(const std::string&)>& on_warning,
    absl::Duration first_answer_timeout) {
  EGRESS_ASSIGN_OR_RETURN(
      UniqueFd fd, SendRequest(socket_path, policy::JsonText(request),
                               " (is egressd running?)", first_answer_timeout));
  std::string buf;
  bool first = true;
  // The first answer within the timeout; records come when they come.
  const absl::Time first_deadline = absl::Now() + first_answer_timeout;
  while (true) {
    auto line =
        ReadLine(fd.get(), first ? first_deadline : absl::InfiniteFuture(),
                 AtEof::kRestIsCutOff, &buf);
    if (first && absl::IsDeadlineExceeded(line.status())) {
      return absl::DeadlineExceededError(
          NoAnswerWithin(socket_path, "answer", first_answer_timeout));
    }
    if (first && !line.ok()) return line.status();
    if (absl::IsUnavailable(line.status())) return absl::OkStatus();  // EOF
    EGRESS_RETURN_IF_ERROR(line.status());
    if (first) {
      first = false;
      EGRESS_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(*line));
      EGRESS_RETURN_IF_ERROR(ResponseStatus(j));
      if (on_warning && j.contains("warning") && j["warning"].is_string()) {
        on_warning(j["warning"].get<std::string>());
      }
      // The backlog (`--last N`) comes in the first response.
      if (j.contains("lines") && j["lines"].is_array()) {
        for (const nlohmann::json& l : j["lines"]) {
          if (l.is_string() && !on_line(l.get<std::string>())) {
            return absl::OkStatus();
          }
        }
      }
      continue;
    }
    if (!on_line(*line)) return absl::OkStatus();
  }
}

absl::StatusOr<ControlListener> ControlListener::Listen(
    const std::string& socket_path) {
  EGRESS_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddr(socket_path));
  EGRESS_RETURN_IF_ERROR(MakeSocketDir(socket_path));
  // A socket file nobody answers on is left over from a killed egressd.
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
      0) {
    return absl::AlreadyExistsError(
        absl::StrCat("another egressd is already listening on ", socket_path));
  }
  // Only a socket is replaced: anything else at the path (a typo naming a
  // policy file, another tool's data) is the operator's, and kept.
  struct stat st;
  if (lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "not a socket: ", socket_path, " is ", FileTypeName(st.st_mode),
          "; egressd replaces only a socket left by an earlier egressd: "
          "remove it or give --socket another path"));
    }
    if (unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "unlink", socket_path);
    }
  } else if (errno != ENOENT) {
    return ErrnoStatus(errno, "lstat", socket_path);
  }
  ControlListener l;
  l.path_ = socket_path;
  l.uid_ = geteuid();
  l.gid_ = getegid();
  EGRESS_ASSIGN_OR_RETURN(l.fd_, l.BindNew());
  return l;
}

absl::StatusOr<UniqueFd> ControlListener::BindNew() {
  EGRESS_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddr(path_));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket", "AF_UNIX");
  // Root's alone from the first instant; a wider mode an operator gave it is
  // set once it is there.
  mode_t old = umask(0177);
  int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  if (rc != 0) return ErrnoStatus(err, "bind", path_);
  // Known as ours from here on (CheckPath, the destructor, Rebind).
  struct stat st;
  if (lstat(path_.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat", path_);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (chmod(path_.c_str(), mode_ & 07777) != 0) {
    return ErrnoStatus(errno, "chmod", path_);
  }
  if ((uid_ != geteuid() || gid_ != getegid()) &&
      fchownat(AT_FDCWD, path_.c_str(), uid_, gid_, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, "chown", path_);
  }
  if (listen(fd.get(), 256) != 0) return ErrnoStatus(errno, "listen", path_);
  return fd;
}

ControlListener::PathCheck ControlListener::CheckPath() {
  struct stat st;
  if (lstat(path_.c_str(), &st) != 0) {
    // ENOENT: the file, or its directory, is gone. Anything else (a file
    // where the directory was: ENOTDIR) is in the way.
    if (errno == ENOENT) return {PathState::kMissing, ""};
    return {PathState::kTaken,
            absl::StrCat("unreadable (", strerror(errno), ")")};
  }
  if (st.st_dev == dev_ && st.st_ino == ino_ && S_ISSOCK(st.st_mode)) {
    mode_ = st.st_mode & 07777;
    uid_ = st.st_uid;
    gid_ = st.st_gid;
    return {PathState::kOurs, ""};
  }
  return {PathState::kTaken,
          S_ISSOCK(st.st_mode)
              ? "a socket this egressd did not bind (another egressd's, or "
                "another program's)"
              : FileTypeName(st.st_mode)};
}

absl::Status ControlListener::Rebind() {
  EGRESS_RETURN_IF_ERROR(MakeSocketDir(path_));
  const dev_t dev = dev_;
  const ino_t ino = ino_;
  absl::StatusOr<UniqueFd> fd = BindNew();
  if (!fd.ok()) {
    // A file bound but not listened on is ours to take back; one that was
    // there first (EADDRINUSE) was not bound, and dev_/ino_ still name the
    // old file.
    if (dev_ != dev || ino_ != ino) {
      unlink(path_.c_str());
      dev_ = dev;
      ino_ = ino;
    }
    return fd.status();
  }
  fd_ = *std::move(fd);
  return absl::OkStatus();
}

ControlListener::~ControlListener() {
  if (!fd_.valid() || path_.empty()) return;
  if (CheckPath().state == PathState::kOurs) unlink(path_.c_str());
}

absl::StatusOr<UniqueFd> ControlListener::Accept() const {
  int c = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return ErrnoStatus(errno, "accept", path_);
  return UniqueFd(c);
}

absl::Status CheckPeerIsRoot(int conn_fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(conn_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus(errno, "getsockopt SO_PEERCRED");
  }
  if (cred.uid != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "egressd accepts commands from root only (peer uid ", cred.uid, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ReadAvailableLine(int conn_fd,
                                                             std::string* buf) {
  return TakeLine(conn_fd, buf, AtEof::kRestIsALine);
}

absl::StatusOr<nlohmann::json> ParseRequest(const std::string& line) {
  return ParseJson(line);
}

absl::StatusOr<control::Request> DecodeRequestLine(const std::string& line) {
  {
    // Freed on leaving: the DOM of an `apply` is tens of MB.
    simdjson::dom::parser parser;
    std::optional<control::SimdjsonView> root =
        control::ParseLineForView(parser, line);
    if (root && root->is_object()) return control::DecodeRequestDom(*root);
  }
  // Not JSON, not an object, or JSON the DOM does not read as the tree
  // would: the tree's way, and its errors.
  EGRESS_ASSIGN_OR_RETURN(nlohmann::json message, ParseRequest(line));
  return control::DecodeRequest(message);
}

absl::StatusOr<nlohmann::json> ReadRequest(int conn_fd,
                                           absl::Duration timeout) {
  EGRESS_RETURN_IF_ERROR(CheckPeerIsRoot(conn_fd));
  EGRESS_ASSIGN_OR_RETURN(
      std::string line,
      ReadLine(conn_fd, absl::Now() + timeout, AtEof::kRestIsALine));
  return ParseJson(line);
}

absl::Status WriteResponse(int conn_fd, const nlohmann::json& response) {
  // Bounded: a client that never reads its answer must not hold egressd.
  std::string line = policy::JsonText(response);
  line += '\n';  // in place: the answer to an `apply` is megabytes
  return WriteAll(conn_fd, line, absl::Now() + absl::Seconds(10));
}

}  // namespace egress
