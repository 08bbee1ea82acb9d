// sample_webapp: a small but real web application, the workload of the
// whole-routine test (tests/privileged/routine_test.cc).
//
//   sample_webapp --listen 127.0.0.1:0 --resolver 127.0.0.53:5353
//                 --smtp 127.0.0.25:2525 --api 127.0.0.80:8080
//                 [--name api.example.test] [--lifetime_s 300]
//
// It serves HTTP/1.1 on --listen (port 0 = ephemeral) and prints
// "listening on ADDR:PORT" on stdout once it accepts connections. For each
// `GET /` it, in this order,
//   1. resolves --name: one DNS query (RFC 1035 wire format, type A, class
//      IN, recursion desired) in a UDP datagram to --resolver, waiting up to
//      2 s for the answer;
//   2. sends a mail over SMTP to --smtp (HELO, MAIL FROM, RCPT TO, DATA,
//      QUIT), checking every reply code;
//   3. calls GET /v1/quote on the HTTP API at --api and expects 200;
// and answers 200 with a one-line summary, or 502 with the step that failed
// and its errno ("smtp failed: Operation not permitted (errno 1): connect").
// `GET /healthz` answers 200 without doing anything; other paths get 404.
// One request at a time; every socket operation is bounded by 2 s. The
// process exits after --lifetime_s seconds, or on SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr int kIoTimeoutMs = 2000;
volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

// Closes the fd when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::optional<sockaddr_in> ParseAddr(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (inet_pton(AF_INET, text.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    return std::nullopt;
  }
  char* end = nullptr;
  long port = strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) return std::nullopt;
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

std::string FormatAddr(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

// A failed step: its errno and what was being done.
struct Failure {
  int err = 0;
  std::string what;
};

// Waits for `events` on fd for up to kIoTimeoutMs; 0 or an errno.
int WaitFd(int fd, short events) {
  pollfd p = {fd, events, 0};
  int r = poll(&p, 1, kIoTimeoutMs);
  if (r < 0) return errno;
  if (r == 0) return ETIMEDOUT;
  return 0;
}

// TCP connect with a bounded wait; the socket stays non-blocking.
std::optional<Failure> Connect(const sockaddr_in& to, Fd* out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failure{errno, "socket"};
  out->reset(fd);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
    if (errno != EINPROGRESS) return Failure{errno, "connect"};
    if (int e = WaitFd(fd, POLLOUT); e != 0) return Failure{e, "connect"};
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Failure{err, "connect"};
  }
  return std::nullopt;
}

std::optional<Failure> SendAll(int fd, const std::string& data,
                               const char* what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Failure{errno, what};
    }
    if (int e = WaitFd(fd, POLLOUT); e != 0) return Failure{e, what};
  }
  return std::nullopt;
}

// Appends what arrives to *buf; EOF is ECONNRESET unless eof_ok.
std::optional<Failure> RecvSome(int fd, std::string* buf, const char* what,
                                bool* eof = nullptr) {
  for (;;) {
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n > 0) {
      buf->append(tmp, static_cast<size_t>(n));
      return std::nullopt;
    }
    if (n == 0) {
      if (eof != nullptr) {
        *eof = true;
        return std::nullopt;
      }
      return Failure{ECONNRESET, what};
    }
    if (errno != EAGAIN && errno != EINTR) return Failure{errno, what};
    if (int e = WaitFd(fd, POLLIN); e != 0) return Failure{e, what};
  }
}

// ---- DNS ----

void PutU16(std::vector<uint8_t>* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v & 0xff));
}
uint16_t GetU16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// Skips a (possibly compressed) name; the offset after it, or 0 if bad.
size_t SkipName(const uint8_t* msg, size_t len, size_t off) {
  for (int labels = 0; off < len && labels < 128; ++labels) {
    uint8_t l = msg[off];
    if (l == 0) return off + 1;
    if ((l & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : 0;
    if ((l & 0xc0) != 0) return 0;
    off += 1 + l;
  }
  return 0;
}

std::optional<Failure> Resolve(const sockaddr_in& resolver,
                               const std::string& name, std::string* addr) {
  const uint16_t id = static_cast<uint16_t>(getpid() ^ time(nullptr));
  std::vector<uint8_t> q;
  PutU16(&q, id);
  PutU16(&q, 0x0100);  // standard query, recursion desired
  PutU16(&q, 1);       // QDCOUNT
  PutU16(&q, 0);
  PutU16(&q, 0);
  PutU16(&q, 0);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    size_t l = dot - start;
    if (l == 0 || l > 63) return Failure{EINVAL, "bad name " + name};
    q.push_back(static_cast<uint8_t>(l));
    q.insert(q.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  PutU16(&q, 1);  // QTYPE A
  PutU16(&q, 1);  // QCLASS IN

  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Failure{errno, "socket"};
  if (sendto(fd.get(), q.data(), q.size(), 0,
             reinterpret_cast<const sockaddr*>(&resolver),
             sizeof(resolver)) < 0) {
    return Failure{errno, "sendto"};
  }
  uint8_t r[512];
  for (int tries = 0; tries < 8; ++tries) {
    if (int e = WaitFd(fd.get(), POLLIN); e != 0) return Failure{e, "recv"};
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd.get(), r, sizeof(r), 0,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return Failure{errno, "recvfrom"};
    if (from.sin_addr.s_addr != resolver.sin_addr.s_addr ||
        from.sin_port != resolver.sin_port) {
      continue;  // not from the resolver
    }
    const size_t len = static_cast<size_t>(n);
    if (len < 12 || GetU16(r) != id || (r[2] & 0x80) == 0) continue;
    if ((r[3] & 0x0f) != 0) {
      return Failure{EPROTO, "rcode " + std::to_string(r[3] & 0x0f)};
    }
    size_t off = 12;
    for (int i = 0; i < GetU16(r + 4); ++i) {
      off = SkipName(r, len, off);
      if (off == 0 || off + 4 > len) return Failure{EBADMSG, "question"};
      off += 4;
    }
    for (int i = 0; i < GetU16(r + 6); ++i) {
      off = SkipName(r, len, off);
      if (off == 0 || off + 10 > len) return Failure{EBADMSG, "answer"};
      uint16_t type = GetU16(r + off), cls = GetU16(r + off + 2);
      uint16_t rdlen = GetU16(r + off + 8);
      off += 10;
      if (off + rdlen > len) return Failure{EBADMSG, "answer data"};
      if (type == 1 && cls == 1 && rdlen == 4) {
        char buf[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, r + off, buf, sizeof(buf));
        *addr = buf;
        return std::nullopt;
      }
      off += rdlen;
    }
    return Failure{ENODATA, "no A record for " + name};
  }
  return Failure{EBADMSG, "no matching answer"};
}

// ---- SMTP ----

// Reads one (possibly multi-line) reply; its code or a failure.
std::optional<Failure> SmtpReply(int fd, std::string* buf, int expect,
                                 const char* after) {
  for (int lines = 0; lines < 64;) {
    size_t eol = buf->find("\r\n");
    if (eol == std::string::npos) {
      if (buf->size() > 4096) return Failure{EMSGSIZE, after};
      if (auto f = RecvSome(fd, buf, after)) return f;
      continue;
    }
    std::string line = buf->substr(0, eol);
    buf->erase(0, eol + 2);
    ++lines;
    if (line.size() >= 4 && line[3] == '-') continue;
    int code = atoi(line.substr(0, 3).c_str());
    if (code != expect) {
      return Failure{EPROTO, std::string(after) + ": " + line};
    }
    return std::nullopt;
  }
  return Failure{EPROTO, after};
}

std::optional<Failure> SendMail(const sockaddr_in& smtp,
                                const std::string& body) {
  Fd fd;
  if (auto f = Connect(smtp, &fd)) return f;
  std::string buf;
  struct Step {
    std::string send;
    int expect;
    const char* what;
  };
  const std::vector<Step> steps = {
      {"", 220, "greeting"},
      {"HELO webapp.test\r\n", 250, "HELO"},
      {"MAIL FROM:<shop@webapp.test>\r\n", 250, "MAIL FROM"},
      {"RCPT TO:<orders@example.test>\r\n", 250, "RCPT TO"},
      {"DATA\r\n", 354, "DATA"},
      {"Subject: new order\r\n\r\n" + body + "\r\n.\r\n", 250, "message"},
      {"QUIT\r\n", 221, "QUIT"},
  };
  for (const Step& s : steps) {
    if (!s.send.empty()) {
      if (auto f = SendAll(fd.get(), s.send, s.what)) return f;
    }
    if (auto f = SmtpReply(fd.get(), &buf, s.expect, s.what)) return f;
  }
  return std::nullopt;
}

// ---- HTTP client ----

std::optional<Failure> CallApi(const sockaddr_in& api, int* status) {
  Fd fd;
  if (auto f = Connect(api, &fd)) return f;
  std::string req = "GET /v1/quote HTTP/1.1\r\nHost: " + FormatAddr(api) +
                    "\r\nConnection: close\r\n\r\n";
  if (auto f = SendAll(fd.get(), req, "send")) return f;
  std::string resp;
  bool eof = false;
  while (!eof && resp.size() < 65536) {
    if (auto f = RecvSome(fd.get(), &resp, "recv", &eof)) return f;
  }
  if (resp.compare(0, 5, "HTTP/") != 0 || resp.size() < 12) {
    return Failure{EBADMSG, "not an HTTP response"};
  }
  *status = atoi(resp.substr(9, 3).c_str());
  if (*status != 200) {
    return Failure{EPROTO, "status " + std::to_string(*status)};
  }
  return std::nullopt;
}

// ---- HTTP server ----

struct Config {
  sockaddr_in listen{}, resolver{}, smtp{}, api{};
  std::string name = "api.example.test";
  int lifetime_s = 300;
};

std::string FailureText(const char* step, const Failure& f) {
  return std::string(step) + " failed: " + strerror(f.err) + " (errno " +
         std::to_string(f.err) + "): " + f.what + "\n";
}

// The work of `GET /`; the status and body of the answer.
int HandleOrder(const Config& c, std::string* body) {
  std::string addr;
  if (auto f = Resolve(c.resolver, c.name, &addr)) {
    *body = FailureText("dns", *f);
    return 502;
  }
  if (auto f = SendMail(c.smtp, "order placed; api at " + addr)) {
    *body = FailureText("smtp", *f);
    return 502;
  }
  int status = 0;
  if (auto f = CallApi(c.api, &status)) {
    *body = FailureText("api", *f);
    return 502;
  }
  *body = "ok: " + c.name + " is " + addr + "; mail accepted; api said " +
          std::to_string(status) + "\n";
  return 200;
}

void Serve(const Config& c, int client) {
  std::string req;
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
    if (RecvSome(client, &req, "request")) return;
  }
  std::string path;
  if (req.compare(0, 4, "GET ") == 0) {
    path = req.substr(4, req.find(' ', 4) - 4);
  }
  std::string body;
  int status = 404;
  if (path == "/") {
    status = HandleOrder(c, &body);
  } else if (path == "/healthz") {
    status = 200;
    body = "ok\n";
  } else {
    body = "not found\n";
  }
  const char* reason = status == 200   ? "OK"
                       : status == 502 ? "Bad Gateway"
                                       : "Not Found";
  std::string resp = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                     "\r\nContent-Type: text/plain\r\nContent-Length: " +
                     std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  SendAll(client, resp, "response");
}

bool ParseFlags(int argc, char** argv, Config* c) {
  bool have_listen = false, have_resolver = false, have_smtp = false,
       have_api = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    std::optional<sockaddr_in> a;
    if (flag == "--name") {
      c->name = value;
      continue;
    }
    if (flag == "--lifetime_s") {
      c->lifetime_s = atoi(value.c_str());
      continue;
    }
    a = ParseAddr(value);
    if (!a) {
      fprintf(stderr, "sample_webapp: %s: bad address %s\n", flag.c_str(),
              value.c_str());
      return false;
    }
    if (flag == "--listen") {
      c->listen = *a;
      have_listen = true;
    } else if (flag == "--resolver") {
      c->resolver = *a;
      have_resolver = true;
    } else if (flag == "--smtp") {
      c->smtp = *a;
      have_smtp = true;
    } else if (flag == "--api") {
      c->api = *a;
      have_api = true;
    } else {
      fprintf(stderr, "sample_webapp: unknown flag %s\n", flag.c_str());
      return false;
    }
  }
  return (argc % 2) == 1 && have_listen && have_resolver && have_smtp &&
         have_api && c->lifetime_s > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  if (!ParseFlags(argc, argv, &c)) {
    fprintf(stderr,
            "usage: sample_webapp --listen A:P --resolver A:P --smtp A:P "
            "--api A:P [--name NAME] [--lifetime_s N]\n");
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);
  Fd lfd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (lfd.get() < 0 ||
      bind(lfd.get(), reinterpret_cast<const sockaddr*>(&c.listen),
           sizeof(c.listen)) != 0 ||
      listen(lfd.get(), 16) != 0) {
    perror("sample_webapp: listen");
    return 1;
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  printf("listening on %s\n", FormatAddr(bound).c_str());
  fflush(stdout);

  const auto end =
      std::chrono::steady_clock::now() + std::chrono::seconds(c.lifetime_s);
  while (!g_stop && std::chrono::steady_clock::now() < end) {
    pollfd p = {lfd.get(), POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    Fd client(
        accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (client.get() < 0) continue;
    Serve(c, client.get());
  }
  return 0;
}
