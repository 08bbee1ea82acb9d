// The world of tests/sample_webapp: a DNS resolver, an SMTP sink and an HTTP
// API, each a real server on a loopback address, plus the HTTP client the test
// drives the application with. The servers run in the test process (outside
// any test cgroup) on one background thread each, serve one client at a time,
// bound every wait (2 s per read, 5 s per client) and stop in their
// destructors.
//
//   ASSERT_OK_AND_ASSIGN(auto dns, FakeDnsServer::Create("127.0.0.53",
//                                                        "127.0.0.80"));
//   ASSERT_OK_AND_ASSIGN(auto smtp, SmtpSink::Create("127.0.0.25"));
//   ASSERT_OK_AND_ASSIGN(auto api, HttpApiServer::Create("127.0.0.80"));
//   ... dns->port(), dns->queries(), smtp->mails(), api->requests()
#ifndef EGRESS_TESTS_TESTING_FAKE_SERVICES_H_
#define EGRESS_TESTS_TESTING_FAKE_SERVICES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace testing {

// A UDP DNS server on addr:port (port 0 = ephemeral) that answers every
// well-formed standard query for an A record (any name) with one A record
// `answer` (TTL 60, the name compressed to the question) and other queries
// with NOTIMP. Malformed datagrams are ignored.
class FakeDnsServer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeDnsServer>> Create(
      const std::string& addr, const std::string& answer, uint16_t port = 0);
  FakeDnsServer(const FakeDnsServer&) = delete;
  FakeDnsServer& operator=(const FakeDnsServer&) = delete;
  ~FakeDnsServer();

  uint16_t port() const { return port_; }
  // A queries answered.
  int queries() const { return queries_.load(); }
  // The name of the last A query, dotted ("api.example.test").
  std::string last_name() const;

 private:
  FakeDnsServer(UniqueFd fd, UniqueFd stop, uint16_t port, uint32_t answer_be);
  void Loop();

  UniqueFd fd_;
  UniqueFd stop_;
  uint16_t port_;
  uint32_t answer_be_;
  std::atomic<int> queries_{0};
  mutable std::mutex mu_;
  std::string last_name_;  // guarded by mu_
  std::thread thread_;
};

// An SMTP server on addr:port that accepts every mail: 220 greeting,
// HELO/EHLO, MAIL FROM, RCPT TO, DATA (up to the lone "."), RSET, NOOP, QUIT;
// anything else gets 500, commands out of order 503.
class SmtpSink {
 public:
  static absl::StatusOr<std::unique_ptr<SmtpSink>> Create(
      const std::string& addr, uint16_t port = 0);
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;
  ~SmtpSink();

  uint16_t port() const { return port_; }
  // Mails accepted (a DATA section ended by ".").
  int mails() const { return mails_.load(); }
  // The last accepted mail: its envelope and data, "FROM -> TO\nDATA".
  std::string last_mail() const;

 private:
  SmtpSink(UniqueFd fd, UniqueFd stop, uint16_t port);
  void Loop();
  void Serve(int client);

  UniqueFd fd_;
  UniqueFd stop_;
  uint16_t port_;
  std::atomic<int> mails_{0};
  mutable std::mutex mu_;
  std::string last_mail_;  // guarded by mu_
  std::thread thread_;
};

// An HTTP/1.1 API on addr:port: every GET gets 200 with a small JSON body
// ({"quote": N}) and Connection: close; other methods get 405.
class HttpApiServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpApiServer>> Create(
      const std::string& addr, uint16_t port = 0);
  HttpApiServer(const HttpApiServer&) = delete;
  HttpApiServer& operator=(const HttpApiServer&) = delete;
  ~HttpApiServer();

  uint16_t port() const { return port_; }
  // GET requests answered.
  int requests() const { return requests_.load(); }

 private:
  HttpApiServer(UniqueFd fd, UniqueFd stop, uint16_t port);
  void Loop();
  void Serve(int client);

  UniqueFd fd_;
  UniqueFd stop_;
  uint16_t port_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://addr:port/path with Connection: close, reading up to 1 MiB until
// the server closes. Errors: the errno of a failing syscall (e.g.
// Unavailable for ECONNREFUSED), DeadlineExceeded after `timeout`,
// DataLoss for a response that is not HTTP.
absl::StatusOr<HttpResponse> HttpGet(
    const std::string& addr, uint16_t port, const std::string& path,
    absl::Duration timeout = absl::Seconds(10));

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_FAKE_SERVICES_H_
