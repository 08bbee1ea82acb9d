// The metrics and health endpoints of a real egressd while local clients
// stall: connections that send nothing, that send part of a request line and
// stop, or that trickle a request a byte at a time. A kubelet liveness probe
// that gets no answer has the pod killed, so a scrape and a probe must still
// be answered, and the server must close the stalled connections itself.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/loopback_tcp.h"
#include "userspace/common/unique_fd.h"
#include "userspace/daemon/metrics.h"

namespace egress::testing {
namespace {

// Generous bounds: the server answers in milliseconds and closes a stalled
// connection within 3 s; 5 s is the probes' timeoutSeconds in
// deploy/kubernetes.
constexpr absl::Duration kAnswerBound = absl::Seconds(5);
constexpr absl::Duration kCloseBound = absl::Seconds(10);

// What `fd` receives until the peer closes it (true) or `deadline` passes
// (false).
bool ReadUntilClosed(int fd, absl::Time deadline, std::string& received) {
  char buf[65536];
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready =
        poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n > 0) received.append(buf, static_cast<size_t>(n));
  }
}

struct HttpAnswer {
  bool complete = false;  // the server answered and closed within the bound
  std::string raw;        // status line, headers, body
};

// GET `path` over a new connection, as a probe does (HTTP/1.1, one request,
// Connection: close), bounded by kAnswerBound.
HttpAnswer Get(int port, const std::string& path) {
  HttpAnswer answer;
  UniqueFd fd = ConnectLoopbackTcp(port).value_or(UniqueFd());
  if (!fd) return answer;
  const std::string request =
      absl::StrCat("GET ", path,
                   " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29"
                   "\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  if (send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return answer;
  }
  answer.complete =
      ReadUntilClosed(fd.get(), absl::Now() + kAnswerBound, answer.raw);
  return answer;
}

// Local clients that hold connections to the metrics port and misbehave,
// from a thread of their own, until Stop(): each kind keeps its count of
// connections open, opening a new one for each the server closes.
class StallingClients {
 public:
  enum Kind {
    kIdle,     // sends nothing
    kPartial,  // sends part of a request line, then nothing
    kTrickle,  // sends a request a byte every 200 ms, never finishing it
  };

  StallingClients(int port, std::map<Kind, int> counts) : port_(port) {
    for (const auto& [kind, count] : counts) {
      for (int i = 0; i < count; ++i) {
        Open(kind);
        std::lock_guard<std::mutex> lock(mu_);
        ++opened_[kind];
      }
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~StallingClients() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    connections_.clear();
  }

  // How many connections of `kind` opened and the server closed so far.
  int opened(Kind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    return opened_[kind];
  }
  int closed_by_server(Kind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_[kind];
  }
  // What the server sent on the connections it closed.
  std::string received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  struct Connection {
    Kind kind;
    UniqueFd fd;
    size_t sent = 0;  // bytes of kTrickleRequest, for kTrickle
  };
  static constexpr char kPartialRequest[] = "GET /metr";
  // Never ends: the header value goes on.
  static constexpr char kTrickleRequest[] =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

  void Open(Kind kind) {
    Connection c{kind, ConnectLoopbackTcp(port_).value_or(UniqueFd())};
    if (!c.fd) return;  // the test sees it in opened() falling short
    if (kind == kPartial) {
      send(c.fd.get(), kPartialRequest, sizeof(kPartialRequest) - 1,
           MSG_NOSIGNAL);
    }
    connections_.push_back(std::move(c));
  }

  // Bounded: at most 60 s even if Stop() is never called.
  void Run() {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    absl::Time next_byte = absl::Now();
    while (!stop_ && absl::Now() < give_up) {
      std::vector<pollfd> polled;
      for (const Connection& c : connections_) {
        polled.push_back({c.fd.get(), POLLIN, 0});
      }
      poll(polled.data(), polled.size(), 50);
      std::vector<Kind> reopen;
      for (size_t i = 0; i < polled.size(); ++i) {
        if (polled[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = recv(polled[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
        std::lock_guard<std::mutex> lock(mu_);
        if (n > 0) received_.append(buf, static_cast<size_t>(n));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          ++closed_[connections_[i].kind];
          reopen.push_back(connections_[i].kind);
          connections_[i].fd.reset();
        }
      }
      connections_.erase(
          std::remove_if(connections_.begin(), connections_.end(),
                         [](const Connection& c) { return !c.fd; }),
          connections_.end());
      if (absl::Now() >= next_byte) {
        next_byte = absl::Now() + absl::Milliseconds(200);
        for (Connection& c : connections_) {
          if (c.kind != kTrickle || c.sent + 1 >= sizeof(kTrickleRequest)) {
            continue;
          }
          if (send(c.fd.get(), &kTrickleRequest[c.sent], 1,
                   MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            ++c.sent;
          }
        }
      }
      for (Kind kind : reopen) {
        Open(kind);
        std::lock_guard<std::mutex> lock(mu_);
        ++opened_[kind];
      }
    }
  }

  const int port_;
  std::vector<Connection> connections_;  // the thread's, after construction
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<Kind, int> opened_;  // guarded by mu_
  std::map<Kind, int> closed_;  // guarded by mu_
  std::string received_;        // guarded by mu_
};

class MetricsSlowClientsTest : public EgressdTest {
 protected:
  int MetricsPort() {
    const nlohmann::json status = CtlJson({"status"});
    if (!status.contains("metrics_port")) return 0;
    return status["metrics_port"].get<int>();
  }

  // GET /metrics and /healthz answer 200 with their real content.
  void ExpectScrapeAndProbeAnswer(int port) {
    const HttpAnswer metrics = Get(port, "/metrics");
    EXPECT_TRUE(metrics.complete) << "no whole answer to GET /metrics within "
                                  << kAnswerBound << "; got: " << metrics.raw;
    EXPECT_TRUE(absl::StartsWith(metrics.raw, "HTTP/1.1 200 ")) << metrics.raw;
    EXPECT_TRUE(absl::StrContains(metrics.raw, "\n# TYPE egress_build_info "))
        << metrics.raw;
    const HttpAnswer health = Get(port, "/healthz");
    EXPECT_TRUE(health.complete) << "no whole answer to GET /healthz within "
                                 << kAnswerBound << "; got: " << health.raw;
    EXPECT_TRUE(absl::StartsWith(health.raw, "HTTP/1.1 200 ")) << health.raw;
    EXPECT_TRUE(absl::EndsWith(health.raw, "\r\n\r\nok\n")) << health.raw;
  }
};

TEST_F(MetricsSlowClientsTest, ScrapeAndProbeAnswerWhileClientsStall) {
  const int port = MetricsPort();
  ASSERT_GT(port, 0);
  using Kind = StallingClients::Kind;
  const std::map<Kind, int> counts = {
      {Kind::kIdle, 32}, {Kind::kPartial, 4}, {Kind::kTrickle, 4}};
  StallingClients clients(port, counts);
  for (const auto& [kind, count] : counts) {
    ASSERT_EQ(clients.opened(kind), count) << "kind " << kind;
  }

  // The stalled connections are open (each closed one is replaced at once)
  // while the scrape and the probe ask, and after them.
  ExpectScrapeAndProbeAnswer(port);

  // The server closes every kind of stalled connection itself, the trickling
  // ones too, however long their client would go on.
  const absl::Time deadline = absl::Now() + kCloseBound;
  auto all_closed = [&] {
    for (const auto& [kind, count] : counts) {
      if (clients.closed_by_server(kind) < count) return false;
    }
    return true;
  };
  while (!all_closed() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (const auto& [kind, count] : counts) {
    EXPECT_GE(clients.closed_by_server(kind), count)
        << "kind " << kind << ": of " << clients.opened(kind)
        << " connections, the server closed only "
        << clients.closed_by_server(kind) << " within " << kCloseBound;
  }
  // The stalled clients go on (the closed ones came back): still answered.
  ExpectScrapeAndProbeAnswer(port);
  clients.Stop();
}

TEST_F(MetricsSlowClientsTest, ConnectionsBeyondTheLimitAreRefused) {
  const int port = MetricsPort();
  ASSERT_GT(port, 0);
  const int surplus = 8;
  std::vector<UniqueFd> idle;
  for (size_t i = 0; i < kMetricsMaxConnections + surplus; ++i) {
    idle.push_back(ConnectLoopbackTcp(port).value_or(UniqueFd()));
    ASSERT_TRUE(idle.back()) << "connection " << i << ": " << strerror(errno);
  }
  // Every connection ends within the bound: the surplus ones at once with a
  // 503, the others when their request never comes.
  int refused = 0;
  const absl::Time deadline = absl::Now() + kCloseBound;
  for (UniqueFd& fd : idle) {
    std::string received;
    EXPECT_TRUE(ReadUntilClosed(fd.get(), deadline, received))
        << "not closed within " << kCloseBound;
    if (absl::StartsWith(received, "HTTP/1.1 503 ")) ++refused;
  }
  EXPECT_GE(refused, surplus);
  // Once they are gone, the server answers again, and counts what it
  // refused.
  ExpectScrapeAndProbeAnswer(port);
  const HttpAnswer metrics = Get(port, "/metrics");
  const std::string line = "\negress_metrics_connections_refused_total ";
  const size_t at = metrics.raw.find(line);
  ASSERT_NE(at, std::string::npos) << metrics.raw;
  // At least what the clients read (a 503 is sent best effort).
  EXPECT_GE(std::stoi(metrics.raw.substr(at + line.size())), refused);
}

}  // namespace
}  // namespace egress::testing
