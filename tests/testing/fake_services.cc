#include "tests/testing/fake_services.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace testing {
namespace {

constexpr int kLoopPollMs = 1000;  // Only a safety net; stop_ wakes the loop.
constexpr absl::Duration kClientTime = absl::Seconds(5);
constexpr absl::Duration kReadTime = absl::Seconds(2);

absl::StatusOr<UniqueFd> MakeEventFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return ErrnoStatus(errno, "eventfd", "fake service stop signal");
  return fd;
}

void Signal(int eventfd) {
  uint64_t one = 1;
  ssize_t ignored = ::write(eventfd, &one, sizeof(one));
  (void)ignored;
}

// Waits until `fd` is readable. False on stop, timeout or error.
bool WaitReadable(int fd, int stop, absl::Time deadline) {
  int ms = static_cast<int>(
      absl::ToInt64Milliseconds(std::min(deadline - absl::Now(), kReadTime)));
  if (ms <= 0) return false;
  pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
  int r;
  do {
    r = ::poll(p, 2, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0 && p[1].revents == 0 && p[0].revents != 0;
}

// A line-oriented connection with bounded reads.
class Conn {
 public:
  Conn(int fd, int stop) : fd_(fd), stop_(stop) {}
  // The next line without its "\r\n" (or "\n"); nullopt on EOF, error, stop
  // or deadline.
  std::optional<std::string> ReadLine() {
    while (true) {
      size_t eol = buf_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buf_.substr(0, eol);
        buf_.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buf_.size() > 65536 || !Fill()) return std::nullopt;
    }
  }
  bool Send(absl::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      pollfd p = {fd_, POLLOUT, 0};
      if (::poll(&p, 1, 2000) <= 0) return false;
    }
    return true;
  }

 private:
  bool Fill() {
    if (!WaitReadable(fd_, stop_, deadline_)) return false;
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_, stop_;
  absl::Time deadline_ = absl::Now() + kClientTime;
  std::string buf_;
};

// Accepts clients on `listen_fd` one at a time until `stop` is signalled.
template <typename ServeFn>
void AcceptLoop(int listen_fd, int stop, ServeFn serve) {
  while (true) {
    pollfd p[2] = {{stop, POLLIN, 0}, {listen_fd, POLLIN, 0}};
    int r = ::poll(p, 2, kLoopPollMs);
    if (r < 0 && errno != EINTR) return;
    if (r <= 0) continue;
    if (p[0].revents != 0) return;
    UniqueFd c(
        ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (c) serve(c.get());
  }
}

absl::StatusOr<UniqueFd> ListenOn(const std::string& addr, uint16_t port) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(SOCK_STREAM, addr, port));
  if (::listen(fd.get(), 64) != 0) {
    return ErrnoStatus(errno, "listen", absl::StrCat(addr, ":", port));
  }
  return fd;
}

uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}

}  // namespace

// ---- FakeDnsServer ----

absl::StatusOr<std::unique_ptr<FakeDnsServer>> FakeDnsServer::Create(
    const std::string& addr, const std::string& answer, uint16_t port) {
  in_addr a{};
  if (::inet_pton(AF_INET, answer.c_str(), &a) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("FakeDnsServer: answer '", answer, "' is not IPv4"));
  }
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, BindSocket(SOCK_DGRAM, addr, port));
  EGRESS_ASSIGN_OR_RETURN(uint16_t bound, LocalPort(fd.get()));
  EGRESS_ASSIGN_OR_RETURN(UniqueFd stop, MakeEventFd());
  return std::unique_ptr<FakeDnsServer>(
      new FakeDnsServer(std::move(fd), std::move(stop), bound, a.s_addr));
}

FakeDnsServer::FakeDnsServer(UniqueFd fd, UniqueFd stop, uint16_t port,
                             uint32_t answer_be)
    : fd_(std::move(fd)),
      stop_(std::move(stop)),
      port_(port),
      answer_be_(answer_be) {
  thread_ = std::thread([this] { Loop(); });
}

FakeDnsServer::~FakeDnsServer() {
  Signal(stop_.get());
  thread_.join();
}

std::string FakeDnsServer::last_name() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_name_;
}

void FakeDnsServer::Loop() {
  uint8_t q[512];
  while (true) {
    pollfd p[2] = {{stop_.get(), POLLIN, 0}, {fd_.get(), POLLIN, 0}};
    int r = ::poll(p, 2, kLoopPollMs);
    if (r < 0 && errno != EINTR) return;
    if (r <= 0) continue;
    if (p[0].revents != 0) return;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd_.get(), q, sizeof(q), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 12) continue;
    const size_t len = static_cast<size_t>(n);
    // A standard query (QR=0, opcode 0) with exactly one question.
    if ((q[2] & 0xf8) != 0 || Get16(q + 4) != 1) continue;
    std::string name;
    size_t off = 12;
    bool ok = false;
    while (off < len) {
      uint8_t l = q[off];
      if (l == 0) {
        ok = true;
        ++off;
        break;
      }
      if (l > 63 || off + 1 + l > len) break;
      absl::StrAppend(
          &name, name.empty() ? "" : ".",
          absl::string_view(reinterpret_cast<char*>(q + off + 1), l));
      off += 1 + l;
    }
    if (!ok || off + 4 > len) continue;
    const uint16_t qtype = Get16(q + off), qclass = Get16(q + off + 2);
    const size_t question_end = off + 4;
    uint8_t a[512];
    std::memcpy(a, q, question_end);
    a[2] = static_cast<uint8_t>(0x80 | (q[2] & 0x01));  // QR, keep RD
    a[3] = 0x80;                                        // RA, NOERROR
    Put16(a + 6, 0);                                    // ANCOUNT
    Put16(a + 8, 0);
    Put16(a + 10, 0);
    size_t alen = question_end;
    if (qtype == 1 && qclass == 1) {
      Put16(a + 6, 1);
      uint8_t* rr = a + alen;
      Put16(rr, 0xc00c);  // the name: a pointer to the question's
      Put16(rr + 2, 1);   // TYPE A
      Put16(rr + 4, 1);   // CLASS IN
      Put16(rr + 6, 0);   // TTL 60
      Put16(rr + 8, 60);
      Put16(rr + 10, 4);  // RDLENGTH
      std::memcpy(rr + 12, &answer_be_, 4);
      alen += 16;
      {
        std::lock_guard<std::mutex> l(mu_);
        last_name_ = name;
      }
      ++queries_;
    } else {
      a[3] = 0x84;  // RA, NOTIMP
    }
    ssize_t ignored =
        ::sendto(fd_.get(), a, alen, MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&from), from_len);
    (void)ignored;
  }
}

// ---- SmtpSink ----

absl::StatusOr<std::unique_ptr<SmtpSink>> SmtpSink::Create(
    const std::string& addr, uint16_t port) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, ListenOn(addr, port));
  EGRESS_ASSIGN_OR_RETURN(uint16_t bound, LocalPort(fd.get()));
  EGRESS_ASSIGN_OR_RETURN(UniqueFd stop, MakeEventFd());
  return std::unique_ptr<SmtpSink>(
      new SmtpSink(std::move(fd), std::move(stop), bound));
}

SmtpSink::SmtpSink(UniqueFd fd, UniqueFd stop, uint16_t port)
    : fd_(std::move(fd)), stop_(std::move(stop)), port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

SmtpSink::~SmtpSink() {
  Signal(stop_.get());
  thread_.join();
}

std::string SmtpSink::last_mail() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_mail_;
}

void SmtpSink::Loop() {
  AcceptLoop(fd_.get(), stop_.get(), [this](int c) { Serve(c); });
}

void SmtpSink::Serve(int client) {
  Conn conn(client, stop_.get());
  if (!conn.Send("220 sink.test ESMTP fake\r\n")) return;
  bool helo = false;
  std::string from, to;
  for (int commands = 0; commands < 100; ++commands) {
    std::optional<std::string> line = conn.ReadLine();
    if (!line) return;
    std::string verb = absl::AsciiStrToUpper(line->substr(0, line->find(' ')));
    std::string reply;
    if (verb == "HELO" || verb == "EHLO") {
      helo = true;
      reply = "250 sink.test\r\n";
    } else if (absl::StartsWithIgnoreCase(*line, "MAIL FROM:")) {
      if (!helo) {
        reply = "503 HELO first\r\n";
      } else {
        from = line->substr(10);
        to.clear();
        reply = "250 OK\r\n";
      }
    } else if (absl::StartsWithIgnoreCase(*line, "RCPT TO:")) {
      if (from.empty()) {
        reply = "503 MAIL first\r\n";
      } else {
        to = line->substr(8);
        reply = "250 OK\r\n";
      }
    } else if (verb == "DATA") {
      if (to.empty()) {
        reply = "503 RCPT first\r\n";
      } else {
        if (!conn.Send("354 end with <CRLF>.<CRLF>\r\n")) return;
        std::string data;
        while (true) {
          std::optional<std::string> d = conn.ReadLine();
          if (!d) return;
          if (*d == ".") break;
          if (data.size() < 65536) absl::StrAppend(&data, *d, "\n");
        }
        {
          std::lock_guard<std::mutex> l(mu_);
          last_mail_ = absl::StrCat(from, " -> ", to, "\n", data);
        }
        ++mails_;
        from.clear();
        to.clear();
        reply = "250 OK queued\r\n";
      }
    } else if (verb == "RSET") {
      from.clear();
      to.clear();
      reply = "250 OK\r\n";
    } else if (verb == "NOOP") {
      reply = "250 OK\r\n";
    } else if (verb == "QUIT") {
      conn.Send("221 bye\r\n");
      return;
    } else {
      reply = "500 unknown command\r\n";
    }
    if (!conn.Send(reply)) return;
  }
}

// ---- HttpApiServer ----

absl::StatusOr<std::unique_ptr<HttpApiServer>> HttpApiServer::Create(
    const std::string& addr, uint16_t port) {
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, ListenOn(addr, port));
  EGRESS_ASSIGN_OR_RETURN(uint16_t bound, LocalPort(fd.get()));
  EGRESS_ASSIGN_OR_RETURN(UniqueFd stop, MakeEventFd());
  return std::unique_ptr<HttpApiServer>(
      new HttpApiServer(std::move(fd), std::move(stop), bound));
}

HttpApiServer::HttpApiServer(UniqueFd fd, UniqueFd stop, uint16_t port)
    : fd_(std::move(fd)), stop_(std::move(stop)), port_(port) {
  thread_ = std::thread([this] { Loop(); });
}

HttpApiServer::~HttpApiServer() {
  Signal(stop_.get());
  thread_.join();
}

void HttpApiServer::Loop() {
  AcceptLoop(fd_.get(), stop_.get(), [this](int c) { Serve(c); });
}

void HttpApiServer::Serve(int client) {
  Conn conn(client, stop_.get());
  std::optional<std::string> request_line = conn.ReadLine();
  if (!request_line) return;
  for (int headers = 0; headers < 100; ++headers) {
    std::optional<std::string> h = conn.ReadLine();
    if (!h) return;
    if (h->empty()) break;
  }
  std::string body, status;
  if (absl::StartsWith(*request_line, "GET ")) {
    int n = ++requests_;
    body = absl::StrCat("{\"quote\": ", n, "}\n");
    status = "200 OK";
  } else {
    body = "{\"error\": \"method not allowed\"}\n";
    status = "405 Method Not Allowed";
  }
  conn.Send(absl::StrCat("HTTP/1.1 ", status,
                         "\r\nContent-Type: application/json\r\n"
                         "Content-Length: ",
                         body.size(), "\r\nConnection: close\r\n\r\n", body));
}

// ---- HttpGet ----

absl::StatusOr<HttpResponse> HttpGet(const std::string& addr, uint16_t port,
                                     const std::string& path,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string what = absl::StrCat("http://", addr, ":", port, path);
  EGRESS_ASSIGN_OR_RETURN(SockAddr sa, ParseSockAddr(addr, port));
  UniqueFd fd(::socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket", what);
  timeval tv = {static_cast<time_t>(absl::ToInt64Seconds(timeout)), 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), sa.get(), sa.len) != 0) {
    return ErrnoStatus(errno, "connect", what);
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", addr, ":",
                                 port, "\r\nConnection: close\r\n\r\n");
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    return ErrnoStatus(errno, "send", what);
  }
  std::string resp;
  while (resp.size() < (1 << 20)) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": no answer"));
    }
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        return absl::DeadlineExceededError(absl::StrCat(what, ": no answer"));
      }
      return ErrnoStatus(errno, "recv", what);
    }
    resp.append(buf, static_cast<size_t>(n));
  }
  HttpResponse out;
  size_t head_end = resp.find("\r\n\r\n");
  if (!absl::StartsWith(resp, "HTTP/1.") || head_end == std::string::npos ||
      resp.size() < 12 || !absl::SimpleAtoi(resp.substr(9, 3), &out.status)) {
    return absl::DataLossError(
        absl::StrCat(what, ": not an HTTP response: ", resp.substr(0, 200)));
  }
  out.body = resp.substr(head_end + 4);
  return out;
}

}  // namespace testing
}  // namespace egress
