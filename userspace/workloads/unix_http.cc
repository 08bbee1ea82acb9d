#include "userspace/workloads/unix_http.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress::workloads {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxBody = 64 * 1024 * 1024;  // a list of many containers
constexpr size_t kMaxLine = 1024 * 1024;

absl::StatusOr<UniqueFd> Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path ", path, " is too long"));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    const int err = errno;
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", path, ": ", strerror(err)));
  }
  return fd;
}

// Waits until `fd` is readable (or writable); DeadlineExceeded after `ms`.
absl::Status WaitFor(int fd, short events, int ms, const std::string& path) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus(errno, "poll");
  if (r == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat(path, " did not answer within ", ms, " ms"));
  }
  return absl::OkStatus();
}

absl::Status SendAll(int fd, const std::string& data, int ms,
                     const std::string& path) {
  size_t sent = 0;
  while (sent < data.size()) {
    EGRESS_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, ms, path));
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("send to ", path));
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Appends what one read gives; 0 at the end of the stream.
absl::StatusOr<size_t> ReadSome(int fd, std::string* out) {
  char buf[16384];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "read");
  out->append(buf, static_cast<size_t>(n));
  return static_cast<size_t>(n);
}

// Connects, sends the GET and reads the head; the bytes read past the head
// go to *rest.
absl::StatusOr<ResponseHead> Request(const std::string& path,
                                     const std::string& target, int ms,
                                     UniqueFd* fd, std::string* rest) {
  EGRESS_ASSIGN_OR_RETURN(*fd, Connect(path));
  EGRESS_RETURN_IF_ERROR(SendAll(fd->get(), GetRequest(target), ms, path));
  std::string in;
  size_t end;
  while ((end = in.find("\r\n\r\n")) == std::string::npos) {
    if (in.size() > kMaxHead) {
      return absl::UnavailableError(
          absl::StrCat(path, ": answer head too long"));
    }
    EGRESS_RETURN_IF_ERROR(WaitFor(fd->get(), POLLIN, ms, path));
    EGRESS_ASSIGN_OR_RETURN(size_t n, ReadSome(fd->get(), &in));
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat(path, " closed the connection before answering"));
    }
  }
  auto head = ParseResponseHead(absl::string_view(in).substr(0, end + 2));
  if (!head.ok()) {
    return absl::UnavailableError(
        absl::StrCat(path, ": ", head.status().message()));
  }
  *rest = in.substr(end + 4);
  return head;
}

absl::Status StatusError(const ResponseHead& head, const std::string& target,
                         const std::string& body) {
  std::string what = absl::StrCat("GET ", target, ": HTTP ", head.status, " ",
                                  body.substr(0, 200));
  if (head.status == 404) return absl::NotFoundError(what);
  return absl::InternalError(what);
}

}  // namespace

absl::StatusOr<std::string> UnixGet(const std::string& socket_path,
                                    const std::string& target, int timeout_ms) {
  UniqueFd fd;
  std::string raw;
  EGRESS_ASSIGN_OR_RETURN(ResponseHead head,
                          Request(socket_path, target, timeout_ms, &fd, &raw));
  // Connection: close: the body ends at the length, the last chunk, or EOF.
  ChunkedDecoder chunks;
  std::string body;
  size_t fed = 0;
  while (true) {
    if (head.chunked) {
      EGRESS_RETURN_IF_ERROR(
          chunks.Feed(absl::string_view(raw).substr(fed), &body));
      fed = raw.size();
      if (chunks.done()) break;
    } else {
      body = raw;
      if (head.content_length && body.size() >= *head.content_length) {
        body.resize(*head.content_length);
        break;
      }
    }
    if (raw.size() > kMaxBody) {
      return absl::UnavailableError(
          absl::StrCat(socket_path, ": answer to ", target, " too long"));
    }
    EGRESS_RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, timeout_ms, socket_path));
    EGRESS_ASSIGN_OR_RETURN(size_t n, ReadSome(fd.get(), &raw));
    if (n == 0) {
      if (head.chunked || head.content_length) {
        return absl::UnavailableError(
            absl::StrCat(socket_path, ": answer to ", target, " cut short"));
      }
      body = raw;
      break;
    }
  }
  if (head.status < 200 || head.status > 299) {
    return StatusError(head, target, body);
  }
  return body;
}

absl::StatusOr<UnixLineStream> UnixLineStream::Open(
    const std::string& socket_path, const std::string& target, int timeout_ms) {
  UnixLineStream s;
  s.target_ = target;
  EGRESS_ASSIGN_OR_RETURN(s.fd_, Connect(socket_path));
  EGRESS_RETURN_IF_ERROR(
      SendAll(s.fd_.get(), GetRequest(target), timeout_ms, socket_path));
  return s;
}

absl::StatusOr<std::vector<std::string>> UnixLineStream::ReadLines() {
  std::string raw;
  EGRESS_ASSIGN_OR_RETURN(size_t n, ReadSome(fd_.get(), &raw));
  if (n == 0) return absl::UnavailableError("the runtime ended the stream");
  if (!have_head_) {
    buffered_ += raw;
    raw.clear();
    const size_t end = buffered_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (buffered_.size() > kMaxHead) {
        return absl::UnavailableError("the stream's answer head is too long");
      }
      return std::vector<std::string>{};
    }
    auto head =
        ParseResponseHead(absl::string_view(buffered_).substr(0, end + 2));
    if (!head.ok()) return absl::UnavailableError(head.status().message());
    head_ = *head;
    have_head_ = true;
    raw = buffered_.substr(end + 4);
    buffered_.clear();
    if (head_.status < 200 || head_.status > 299) {
      return StatusError(head_, target_, raw);
    }
  }
  if (head_.chunked) {
    if (absl::Status st = chunks_.Feed(raw, &partial_); !st.ok()) {
      return absl::UnavailableError(st.message());
    }
  } else {
    partial_ += raw;
  }
  std::vector<std::string> lines;
  size_t start = 0, nl;
  while ((nl = partial_.find('\n', start)) != std::string::npos) {
    if (nl > start) lines.push_back(partial_.substr(start, nl - start));
    start = nl + 1;
  }
  partial_.erase(0, start);
  if (partial_.size() > kMaxLine) {
    return absl::UnavailableError("a line of the stream is too long");
  }
  return lines;
}

}  // namespace egress::workloads
