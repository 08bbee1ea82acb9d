#include "userspace/events/event_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/events/event_json.h"

namespace egress {

EventSink::~EventSink() = default;

namespace {

// Writes `line` and a newline; one writev in the common case. Returns 0 or
// the errno of the failure (EIO for a write that makes no progress).
int WriteLine(int fd, absl::string_view line) {
  static const char kNewline = '\n';
  size_t done = 0;
  const size_t total = line.size() + 1;
  while (done < total) {
    iovec iov[2];
    int n = 0;
    if (done < line.size()) {
      iov[n++] = {const_cast<char*>(line.data()) + done, line.size() - done};
    }
    iov[n++] = {const_cast<char*>(&kNewline), 1};
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    done += static_cast<size_t>(w);
  }
  return 0;
}

class StdoutSinkImpl : public EventSink {
 public:
  void Write(RenderedEvent& event) override {
    if (WriteLine(STDOUT_FILENO, event.Json()) != 0) ++errors_;
  }
  uint64_t errors() const override { return errors_; }

 private:
  uint64_t errors_ = 0;
};

// Creates `dir` and its missing parents (mode 0750).
absl::Status MakeDirs(const std::string& file, const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return ErrnoStatus(ENOTDIR, absl::StrCat("events file ", file, ": mkdir"),
                       dir);
  }
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    EGRESS_RETURN_IF_ERROR(MakeDirs(file, dir.substr(0, slash)));
  }
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("events file ", file, ": mkdir"),
                       dir);
  }
  return absl::OkStatus();
}

class RotatingFileSinkImpl : public EventSink {
 public:
  RotatingFileSinkImpl(std::string path, uint64_t max_bytes, int keep)
      : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {}

  absl::Status Open() {
    fd_.reset();
    size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      EGRESS_RETURN_IF_ERROR(MakeDirs(path_, path_.substr(0, slash)));
    }
    UniqueFd fd(
        open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd) return ErrnoStatus(errno, "events file: open", path_);
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
      return ErrnoStatus(errno, "events file: fstat", path_);
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("events file: ", path_, " is not a regular file"));
    }
    fd_ = std::move(fd);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    size_ = static_cast<uint64_t>(st.st_size);
    newline_first_ = false;  // no partial line of ours in this file yet
    return absl::OkStatus();
  }

  void Write(RenderedEvent& event) override {
    const std::string& json_line = event.Json();
    if (absl::Status st = EnsureOpen(); !st.ok()) {
      Failed(st);
      return;
    }
    const uint64_t need = json_line.size() + 1;
    if (size_ > 0 && size_ + need > max_bytes_) {
      if (absl::Status st = Rotate(); !st.ok()) {
        Failed(st);
        return;
      }
    }
    // A line after a failed write whose partial line could not be cut
    // starts on a line of its own: the partial one stays alone and invalid.
    const std::string& line =
        newline_first_ ? (fresh_line_ = "\n" + json_line) : json_line;
    // Where this line starts: a failed write is cut back to it, so that a
    // partial line (ENOSPC halfway) is not the start of the next record's.
    const uint64_t start = size_;
    if (int err = WriteLine(fd_.get(), line); err != 0) {
      Failed(ErrnoStatus(err, "events file: write", path_));
      if (ftruncate(fd_.get(), static_cast<off_t>(start)) == 0) {
        size_ = start;
      } else {
        struct stat st;
        if (fstat(fd_.get(), &st) == 0) {
          newline_first_ = static_cast<uint64_t>(st.st_size) != start;
          size_ = st.st_size;
        } else {
          newline_first_ = true;
        }
      }
      return;
    }
    newline_first_ = false;
    size_ += line.size() + 1;
    if (failing_) {
      failing_ = false;
      fprintf(stderr, "egressd: events file %s: writing again\n",
              path_.c_str());
    }
  }

  uint64_t errors() const override { return errors_; }

 private:
  // Keeps fd_ on the file currently at path_ (re-created if it went away).
  absl::Status EnsureOpen() {
    if (fd_.valid()) {
      struct stat st;
      if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
          st.st_ino == ino_) {
        size_ = static_cast<uint64_t>(st.st_size);
        return absl::OkStatus();
      }
    }
    return Open();
  }

  absl::Status Rotate() {
    fd_.reset();
    if (keep_ == 0) {
      if (unlink(path_.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "events file: unlink", path_);
      }
    } else {
      for (int i = keep_ - 1; i >= 1; --i) {
        std::string from = absl::StrCat(path_, ".", i);
        std::string to = absl::StrCat(path_, ".", i + 1);
        if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
          return ErrnoStatus(errno, "events file: rename", from);
        }
      }
      std::string first = absl::StrCat(path_, ".1");
      if (rename(path_.c_str(), first.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "events file: rename", path_);
      }
    }
    return Open();
  }

  void Failed(const absl::Status& st) {
    ++errors_;
    if (!failing_) {
      failing_ = true;
      fprintf(stderr, "egressd: %s (records are counted and dropped)\n",
              st.ToString().c_str());
    }
  }

  const std::string path_;
  const uint64_t max_bytes_;
  const int keep_;
  UniqueFd fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t size_ = 0;
  uint64_t errors_ = 0;
  bool failing_ = false;
  // The file may end in a partial line that could not be cut off.
  bool newline_first_ = false;
  std::string fresh_line_;  // "\n" + the line, when newline_first_
};

// What syslog(3) would send for `message` (glibc's format, RFC 3164):
// "<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE", local time, no newline.
std::string SyslogDatagram(int priority, const std::string& ident,
                           const std::string& message) {
  char stamp[32] = "";
  const time_t now = time(nullptr);
  struct tm local;
  if (localtime_r(&now, &local) != nullptr) {
    strftime(stamp, sizeof(stamp), "%h %e %T", &local);
  }
  return absl::StrCat("<", priority, ">", stamp, " ", ident, "[", getpid(),
                      "]: ", message);
}

// Its own datagram socket to the syslog socket rather than syslog(3),
// which reports no failure: a record that does not get there is counted.
class SyslogSinkImpl : public EventSink {
 public:
  SyslogSinkImpl(std::string ident, std::string socket_path)
      : ident_(std::move(ident)), socket_path_(std::move(socket_path)) {
    if (int err = Connect(); err != 0) {
      failing_ = true;
      fprintf(stderr,
              "egressd: syslog: cannot connect to %s: %s; records for "
              "syslog are counted as errors until it can (retried with "
              "every record)\n",
              socket_path_.c_str(), strerror(err));
    }
  }

  void Write(RenderedEvent& event) override {
    const std::string datagram = SyslogDatagram(
        LOG_DAEMON | LOG_WARNING, ident_,
        absl::StrCat("EGRESS ", VerdictName(event.record().raw.verdict), " ",
                     event.Text()));
    int err = fd_.valid() ? Send(datagram) : ENOTCONN;
    // Not connected yet, or the syslog daemon restarted (a new socket at
    // the path; the old one refuses): once more on a new connection.
    if (err != 0 && (err = Connect()) == 0) err = Send(datagram);
    if (err != 0) {
      ++errors_;
      if (!failing_) {
        failing_ = true;
        fprintf(stderr,
                "egressd: syslog: %s: %s (records are counted and dropped)\n",
                socket_path_.c_str(), strerror(err));
      }
      return;
    }
    if (failing_) {
      failing_ = false;
      fprintf(stderr, "egressd: syslog: %s: sending again\n",
              socket_path_.c_str());
    }
  }
  uint64_t errors() const override { return errors_; }

 private:
  // 0 or the errno of socket/connect; fd_ is connected only on success.
  int Connect() {
    fd_.reset();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof(addr.sun_path)) return ENAMETOOLONG;
    socket_path_.copy(addr.sun_path, socket_path_.size());
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno;
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
        0) {
      return errno;
    }
    fd_ = std::move(fd);
    return 0;
  }
  // 0 or the errno of the send (EMSGSIZE for a datagram sent in part).
  int Send(const std::string& datagram) {
    ssize_t n;
    do {
      n = send(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    return static_cast<size_t>(n) == datagram.size() ? 0 : EMSGSIZE;
  }

  const std::string ident_;
  const std::string socket_path_;
  UniqueFd fd_;
  uint64_t errors_ = 0;
  bool failing_ = false;
};

class FanOutSink : public EventSink {
 public:
  explicit FanOutSink(std::vector<std::unique_ptr<EventSink>> sinks) {
    for (auto& s : sinks) {
      if (s != nullptr) sinks_.push_back(std::move(s));
    }
  }
  void Write(RenderedEvent& event) override {
    for (auto& s : sinks_) s->Write(event);
  }
  uint64_t errors() const override {
    uint64_t n = 0;
    for (const auto& s : sinks_) n += s->errors();
    return n;
  }

 private:
  std::vector<std::unique_ptr<EventSink>> sinks_;
};

}  // namespace

std::unique_ptr<EventSink> StdoutSink() {
  return std::make_unique<StdoutSinkImpl>();
}

absl::StatusOr<std::unique_ptr<EventSink>> RotatingFileSink(
    const std::string& path, uint64_t max_bytes, int keep) {
  if (path.empty()) {
    return absl::InvalidArgumentError("events file: empty path");
  }
  if (max_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("events file ", path, ": max_bytes must be > 0"));
  }
  if (keep < 0 || keep > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events file ", path, ": keep must be 0..1000, not ", keep));
  }
  auto sink = std::make_unique<RotatingFileSinkImpl>(path, max_bytes, keep);
  EGRESS_RETURN_IF_ERROR(sink->Open());
  return sink;
}

std::unique_ptr<EventSink> SyslogSink(const std::string& ident,
                                      const std::string& socket_path) {
  return std::make_unique<SyslogSinkImpl>(ident, socket_path);
}

std::unique_ptr<EventSink> FanOut(
    std::vector<std::unique_ptr<EventSink>> sinks) {
  return std::make_unique<FanOutSink>(std::move(sinks));
}

}  // namespace egress
