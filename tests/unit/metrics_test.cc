// Prometheus exposition of a MetricsSnapshot, and the HTTP server on
// 127.0.0.1 (ephemeral ports, no root needed).
#include "userspace/daemon/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/loopback_tcp.h"
#include "tests/testing/status_matchers.h"
#include "userspace/common/unique_fd.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MetricsSnapshot SampleSnapshot() {
  MetricsSnapshot s;
  // Deliberately out of order: the exposition sorts series.
  s.verdicts.push_back({"web", "denied", "tcp", 3});
  s.verdicts.push_back({"db", "allowed", "udp", 7});
  s.verdicts.push_back({"db", "allowed", "tcp", 11});
  s.rule_hits.push_back({"web", 2, 5});
  s.rule_hits.push_back({"web", 0, 3});
  MetricsSnapshot::Target web;
  web.name = "web";
  web.mode = "enforce";
  web.rules = 2;
  web.hooks_attached = 6;
  web.hooks_total = 6;
  web.sockets_denied = 1;
  web.degraded = true;
  web.source_routes_denied = 0;
  web.events_lost = 4;
  web.events_suppressed = 9;
  web.flows_active = 12;
  web.udp_peers_recorded = 300;
  web.udp_peers_not_recorded = 1;
  web.udp_peers_live = 262;
  web.udp_peers_evicted = 37;
  web.rule_hits_not_counted = 6;
  MetricsSnapshot::Target db;
  db.name = "db";
  db.mode = "audit";
  db.rules = 1;
  db.hooks_attached = 5;
  db.hooks_total = 6;
  s.targets = {web, db};
  s.events_read = 123456789012345;
  s.events_dropped = 2;
  s.events_sink_errors = 3;
  s.udp_peers_evicted = 40;
  s.last_reload_ok = false;
  s.version = "0.1.0";
  s.libbpf_version = "1.1.0";
  s.node = "node-1";
  s.self_check_failures = 2;
  return s;
}

TEST(FormatMetricsTest, SampleSnapshotExactly) {
  // Label names are sorted within a series (prometheus-cpp keeps them in a
  // map); series are sorted by label values.
  const std::string want =
      R"(# HELP egress_verdicts_total Egress verdicts (kernel counters) by target, verdict and protocol.
# TYPE egress_verdicts_total counter
egress_verdicts_total{proto="tcp",target="db",verdict="allowed"} 11
egress_verdicts_total{proto="tcp",target="web",verdict="denied"} 3
egress_verdicts_total{proto="udp",target="db",verdict="allowed"} 7
# HELP egress_rule_hits_total Matches per policy rule, by the rule's id (egressctl list -o json); rule_id 0 is the target's default action.
# TYPE egress_rule_hits_total counter
egress_rule_hits_total{rule_id="0",target="web"} 3
egress_rule_hits_total{rule_id="2",target="web"} 5
# HELP egress_rule_hits_not_counted_total Decisions not counted in egress_rule_hits_total: the kernel's map of rule hits (65,536 rules with hits, all targets) was full.
# TYPE egress_rule_hits_not_counted_total counter
egress_rule_hits_not_counted_total{target="db"} 0
egress_rule_hits_not_counted_total{target="web"} 6
# HELP egress_sockets_denied_total Raw and ping socket creations refused.
# TYPE egress_sockets_denied_total counter
egress_sockets_denied_total{target="db"} 0
egress_sockets_denied_total{target="web"} 1
# HELP egress_source_routes_denied_total Source routing (IPv4 LSRR/SSRR, IPv6 routing header) refused or dropped.
# TYPE egress_source_routes_denied_total counter
egress_source_routes_denied_total{target="db"} 0
egress_source_routes_denied_total{target="web"} 0
# HELP egress_events_lost_total Events lost to a full ring buffer (still counted).
# TYPE egress_events_lost_total counter
egress_events_lost_total{target="db"} 0
egress_events_lost_total{target="web"} 4
# HELP egress_events_suppressed_total Events not reported due to rate limiting (still counted).
# TYPE egress_events_suppressed_total counter
egress_events_suppressed_total{target="db"} 0
egress_events_suppressed_total{target="web"} 9
# HELP egress_udp_peers_recorded_total UDP peers recorded (a peer's first datagram to a socket of the target), which it may answer.
# TYPE egress_udp_peers_recorded_total counter
egress_udp_peers_recorded_total{target="db"} 0
egress_udp_peers_recorded_total{target="web"} 300
# HELP egress_udp_peers_not_recorded_total UDP peers the kernel failed to record.
# TYPE egress_udp_peers_not_recorded_total counter
egress_udp_peers_not_recorded_total{target="db"} 0
egress_udp_peers_not_recorded_total{target="web"} 1
# HELP egress_udp_peers_evicted_total UDP peers recorded that the full map evicted: they can no longer be answered (recorded - deleted - kept, every few seconds at most).
# TYPE egress_udp_peers_evicted_total counter
egress_udp_peers_evicted_total{target="db"} 0
egress_udp_peers_evicted_total{target="web"} 37
# HELP egress_events_read_total Event records read from the ring buffer.
# TYPE egress_events_read_total counter
egress_events_read_total 123456789012345
# HELP egress_events_dropped_total Event records egressd could not deliver, by reason: a follower's full buffer, or a sink's failed write.
# TYPE egress_events_dropped_total counter
egress_events_dropped_total{reason="follower"} 2
egress_events_dropped_total{reason="sink"} 3
# HELP egress_metrics_connections_refused_total Connections to this endpoint answered 503 because it already served its limit of them at once (slow or idle clients).
# TYPE egress_metrics_connections_refused_total counter
egress_metrics_connections_refused_total 0
# HELP egress_udp_peers_evicted_all_targets_total UDP peers evicted, of every target since egressd started (removed targets included).
# TYPE egress_udp_peers_evicted_all_targets_total counter
egress_udp_peers_evicted_all_targets_total 40
# HELP egress_self_check_failures_total Self-check probes and checks that found a target not enforced.
# TYPE egress_self_check_failures_total counter
egress_self_check_failures_total 2
# HELP egress_flows_active TCP connections of the target currently open (opened minus closed, both directions), unexplained ones included.
# TYPE egress_flows_active gauge
egress_flows_active{target="db"} 0
egress_flows_active{target="web"} 12
# HELP egress_udp_peers UDP peers of the target recorded now.
# TYPE egress_udp_peers gauge
egress_udp_peers{target="db"} 0
egress_udp_peers{target="web"} 262
# HELP egress_policy_rules Rules in the target's loaded policy.
# TYPE egress_policy_rules gauge
egress_policy_rules{target="db"} 1
egress_policy_rules{target="web"} 2
# HELP egress_attached_hooks BPF programs currently attached for the target.
# TYPE egress_attached_hooks gauge
egress_attached_hooks{target="db"} 5
egress_attached_hooks{target="web"} 6
# HELP egress_target_info Configured targets and their mode (always 1).
# TYPE egress_target_info gauge
egress_target_info{mode="audit",target="db"} 1
egress_target_info{mode="enforce",target="web"} 1
# HELP egress_target_degraded 1 when the field self-check found the target not enforced.
# TYPE egress_target_degraded gauge
egress_target_degraded{target="db"} 0
egress_target_degraded{target="web"} 1
# HELP egress_workload_info_omitted egress_workload_info series left out of this scrape: those past the first 10000 (target, container).
# TYPE egress_workload_info_omitted gauge
egress_workload_info_omitted 0
# HELP egress_config_last_reload_successful Whether the last configuration reload succeeded.
# TYPE egress_config_last_reload_successful gauge
egress_config_last_reload_successful 0
# HELP egress_build_info egressd build information (always 1).
# TYPE egress_build_info gauge
egress_build_info{libbpf_version="1.1.0",node="node-1",version="0.1.0"} 1
)";
  EXPECT_EQ(FormatMetrics(SampleSnapshot()), want);
}

TEST(FormatMetricsTest, EveryDocumentedMetricHasHelpAndType) {
  const std::string text = "\n" + FormatMetrics(SampleSnapshot());
  const struct {
    const char* name;
    const char* type;
  } kMetrics[] = {
      {"egress_verdicts_total", "counter"},
      {"egress_rule_hits_total", "counter"},
      {"egress_rule_hits_not_counted_total", "counter"},
      {"egress_sockets_denied_total", "counter"},
      {"egress_source_routes_denied_total", "counter"},
      {"egress_events_lost_total", "counter"},
      {"egress_events_suppressed_total", "counter"},
      {"egress_udp_peers_recorded_total", "counter"},
      {"egress_udp_peers_not_recorded_total", "counter"},
      {"egress_udp_peers_evicted_total", "counter"},
      {"egress_udp_peers_evicted_all_targets_total", "counter"},
      {"egress_udp_peers", "gauge"},
      {"egress_events_read_total", "counter"},
      {"egress_events_dropped_total", "counter"},
      {"egress_flows_active", "gauge"},
      {"egress_policy_rules", "gauge"},
      {"egress_attached_hooks", "gauge"},
      {"egress_target_info", "gauge"},
      {"egress_workload_info_omitted", "gauge"},
      {"egress_config_last_reload_successful", "gauge"},
      {"egress_build_info", "gauge"},
  };
  for (const auto& m : kMetrics) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("\n# HELP ", m.name, " ")))
        << m.name;
    EXPECT_THAT(text,
                HasSubstr(absl::StrCat("\n# TYPE ", m.name, " ", m.type, "\n")))
        << m.name;
  }
}

// Targets with name rules add the DNS families; without any, there are
// none (SampleSnapshotExactly).
TEST(FormatMetricsTest, DnsSeriesOfTargetsWithNameRules) {
  MetricsSnapshot s = SampleSnapshot();
  MetricsSnapshot::Target& web = s.targets[0];
  web.names = true;
  web.dns.queries = 10;
  web.dns.answers = 9;
  web.dns.ignored_malformed = 1;
  web.dns.ignored_no_query = 2;
  web.dns.ignored_resolver = 3;
  web.dns.ignored_no_rule = 4;
  web.dns.answers_empty = 5;
  web.dns.bindings_learned = 6;
  web.dns.refused_full = 7;
  web.dns.bindings_live = 8;
  web.dns.bindings_swept = 11;
  const std::string text = FormatMetrics(s);
  for (const char* line : {
           "egress_dns_queries_total{target=\"web\"} 10\n",
           "egress_dns_answers_total{target=\"web\"} 9\n",
           "egress_dns_answers_ignored_total{reason=\"malformed\",target="
           "\"web\"} 1\n",
           "egress_dns_answers_ignored_total{reason=\"no_query\",target="
           "\"web\"} 2\n",
           "egress_dns_answers_ignored_total{reason=\"resolver_not_allowed\","
           "target=\"web\"} 3\n",
           "egress_dns_answers_ignored_total{reason=\"no_rule\",target="
           "\"web\"} 4\n",
           "egress_dns_answers_ignored_total{reason=\"no_address\",target="
           "\"web\"} 5\n",
           "egress_dns_bindings_learned_total{target=\"web\"} 6\n",
           "egress_dns_bindings_refused_total{target=\"web\"} 7\n",
           "egress_dns_bindings{target=\"web\"} 8\n",
           "egress_dns_bindings_swept_total{target=\"web\"} 11\n",
           "# TYPE egress_dns_bindings gauge\n",
           "# TYPE egress_dns_answers_ignored_total counter\n",
           "# HELP egress_dns_answers_ignored_total DNS answers that bound "
           "nothing, by reason: malformed, no_query (no query of the socket "
           "asked it), resolver_not_allowed, no_rule (no name rule covers the "
           "question), no_address (an rcode or no A/AAAA), not_message_start "
           "(a TCP segment that starts no message).\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  // db has no name rules: no DNS series.
  EXPECT_THAT(text, Not(HasSubstr("egress_dns_answers_total{target=\"db\"}")));
}

TEST(FormatMetricsTest, EscapesLabelValues) {
  MetricsSnapshot s;
  s.rule_hits.push_back({"t\"1 C:\\dir\nsecond line", 7, 4});
  const std::string text = FormatMetrics(s);
  EXPECT_THAT(text, HasSubstr("egress_rule_hits_total{rule_id=\"7\",target=\"t"
                              "\\\"1 C:\\\\dir\\nsecond line\"} 4\n"));
  // No raw newline leaks out of the label value.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "second line")) << text;
  }
}

TEST(FormatMetricsTest, InvalidUtf8BecomesReplacementCharacter) {
  MetricsSnapshot s;
  MetricsSnapshot::Target t;
  t.name = "caf\xC3\xA9-\xFF\xC0\xAF-ok";  // valid é, stray 0xFF, overlong '/'
  t.mode = "enforce";
  s.targets.push_back(t);
  const std::string text = FormatMetrics(s);
  EXPECT_THAT(text,
              HasSubstr("egress_flows_active{target=\"caf\xC3\xA9-"
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD-ok\"} 0\n"));
}

TEST(FormatMetricsTest, EmptySnapshotHasBuildInfoAndReloadGauge) {
  MetricsSnapshot s;
  const std::string text = FormatMetrics(s);
  EXPECT_THAT(text, HasSubstr("\n# TYPE egress_build_info gauge\n"
                              "egress_build_info{libbpf_version=\"\","
                              "node=\"\",version=\"\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\negress_config_last_reload_successful 1\n"));
  EXPECT_THAT(text, HasSubstr("\negress_events_read_total 0\n"));
  EXPECT_THAT(text,
              HasSubstr("\negress_events_dropped_total{reason=\"sink\"} 0\n"));
  // Per-target families have no series, and are left out entirely.
  EXPECT_THAT(text, Not(HasSubstr("egress_verdicts_total")));
  EXPECT_THAT(text, Not(HasSubstr("egress_flows_active")));
}

// egressd's start work: the gauge follows the shared set's load, and an
// egressd with a set per target (nullopt) has no such series.
TEST(FormatMetricsTest, SharedProgramSetLoadedGauge) {
  MetricsSnapshot s;
  EXPECT_THAT(FormatMetrics(s),
              Not(HasSubstr("egress_shared_program_set_loaded")));
  s.shared_program_set_loaded = false;
  EXPECT_THAT(FormatMetrics(s),
              HasSubstr("\n# TYPE egress_shared_program_set_loaded gauge\n"
                        "egress_shared_program_set_loaded 0\n"));
  s.shared_program_set_loaded = true;
  EXPECT_THAT(FormatMetrics(s),
              HasSubstr("\negress_shared_program_set_loaded 1\n"));
}

TEST(FormatMetricsTest, DuplicateCounterSeriesAreSummed) {
  MetricsSnapshot s;
  s.verdicts.push_back({"web", "denied", "tcp", 3});
  s.verdicts.push_back({"web", "denied", "tcp", 4});
  EXPECT_THAT(FormatMetrics(s),
              HasSubstr("\negress_verdicts_total{proto=\"tcp\",target=\"web\","
                        "verdict=\"denied\"} 7\n"));
}

// A minimal blocking HTTP/1.0 client for 127.0.0.1, every step bounded by
// socket timeouts.
struct HttpReply {
  int status = 0;
  std::string headers;  // lower-cased, "\r\n"-separated
  std::string body;
};

absl::StatusOr<HttpReply> Fetch(int port, const std::string& path,
                                const std::string& extra_headers = "") {
  absl::StatusOr<UniqueFd> connected = testing::ConnectLoopbackTcp(port);
  if (!connected.ok()) return connected.status();
  UniqueFd fd = *std::move(connected);
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n",
                   extra_headers, "Connection: close\r\n\r\n");
  if (send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return absl::ErrnoToStatus(errno, "send");
  }
  std::string raw;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0) return absl::ErrnoToStatus(errno, "recv");
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.size() < 12 ||
      !absl::StartsWith(raw, "HTTP/1.")) {
    return absl::DataLossError(absl::StrCat("bad reply: ", raw));
  }
  HttpReply reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.headers = absl::AsciiStrToLower(raw.substr(0, end + 2));
  reply.body = raw.substr(end + 4);
  return reply;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MetricsServer::Start(
        "127.0.0.1:0",
        [this] {
          scrapes_++;
          return SampleSnapshot();
        },
        [this] { return healthy_.load(); });
    ASSERT_OK(server);
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  std::atomic<int> scrapes_{0};
  std::atomic<bool> healthy_{true};
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, ServesMetrics) {
  ASSERT_OK_AND_ASSIGN(HttpReply reply, Fetch(server_->port(), "/metrics"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.headers,
              HasSubstr("\r\ncontent-type: text/plain; version=0.0.4; "
                        "charset=utf-8\r\n"));
  EXPECT_EQ(reply.body, FormatMetrics(SampleSnapshot()));
  EXPECT_EQ(scrapes_.load(), 1);
  // A fresh snapshot per scrape.
  ASSERT_OK(Fetch(server_->port(), "/metrics"));
  EXPECT_EQ(scrapes_.load(), 2);
}

TEST_F(MetricsServerTest, CompressesWhenAsked) {
  ASSERT_OK_AND_ASSIGN(HttpReply reply, Fetch(server_->port(), "/metrics",
                                              "Accept-Encoding: gzip\r\n"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_THAT(reply.headers, HasSubstr("\r\ncontent-encoding: gzip\r\n"));
  ASSERT_GE(reply.body.size(), 2u);
  EXPECT_EQ(reply.body.substr(0, 2), "\x1f\x8b");  // gzip magic
}

TEST_F(MetricsServerTest, HealthzFollowsCallback) {
  ASSERT_OK_AND_ASSIGN(HttpReply ok, Fetch(server_->port(), "/healthz"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");
  healthy_ = false;
  ASSERT_OK_AND_ASSIGN(HttpReply bad, Fetch(server_->port(), "/healthz"));
  EXPECT_EQ(bad.status, 503);
  healthy_ = true;
  ASSERT_OK_AND_ASSIGN(HttpReply again, Fetch(server_->port(), "/healthz"));
  EXPECT_EQ(again.status, 200);
}

TEST_F(MetricsServerTest, OtherPathsAre404) {
  for (const char* path : {"/other", "/", "/metrics/x", "/healthzz"}) {
    ASSERT_OK_AND_ASSIGN(HttpReply reply, Fetch(server_->port(), path));
    EXPECT_EQ(reply.status, 404) << path;
  }
  EXPECT_EQ(scrapes_.load(), 0);
}

TEST_F(MetricsServerTest, SecondServerOnSamePortFails) {
  const std::string address = absl::StrCat("127.0.0.1:", server_->port());
  auto second = MetricsServer::Start(
      address, [] { return MetricsSnapshot{}; }, [] { return true; });
  ASSERT_FALSE(second.ok());
  // absl::ErrnoToStatus maps EADDRINUSE to FailedPrecondition.
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(address));
  EXPECT_THAT(second.status().message(), HasSubstr("Address already in use"));
  // The first server is unaffected.
  ASSERT_OK_AND_ASSIGN(HttpReply reply, Fetch(server_->port(), "/healthz"));
  EXPECT_EQ(reply.status, 200);
}

TEST_F(MetricsServerTest, StopsPromptlyWithIdleConnectionOpen) {
  UniqueFd idle(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(idle);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(server_->port()));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)),
            0);
  // A connection waits up to 3 s for its request; stopping does not.
  const auto start = std::chrono::steady_clock::now();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// httplib's own timeout applies to each read: a client sending a byte every
// 200 ms held a connection (and a worker) forever. The whole request has a
// deadline (3 s), so the server closes the connection however the client
// trickles, and answers others meanwhile.
TEST_F(MetricsServerTest, TricklingRequestIsCutOff) {
  UniqueFd slow(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(slow);
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(slow.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(server_->port()));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(slow.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)),
            0);
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " +
      std::string(200, 'a');
  bool closed = false;
  // Bounded: at most 50 bytes, one each 200 ms (10 s).
  for (size_t sent = 0; sent < 50 && !closed; ++sent) {
    send(slow.get(), &request[sent], 1, MSG_NOSIGNAL);
    pollfd p{slow.get(), POLLIN, 0};
    if (poll(&p, 1, 200) == 1) {
      char buf[512];
      closed = recv(slow.get(), buf, sizeof(buf), 0) <= 0;
      // A 400 for the unfinished header comes first, then the end.
      if (!closed) closed = recv(slow.get(), buf, sizeof(buf), 0) <= 0;
    }
    if (sent == 5) {
      ASSERT_OK_AND_ASSIGN(HttpReply reply, Fetch(server_->port(), "/healthz"));
      EXPECT_EQ(reply.status, 200);
    }
  }
  EXPECT_TRUE(closed) << "the trickling connection is still open after 10 s";
}

TEST(MetricsServerStartTest, ThrowingCallbacksGive500And503) {
  auto server = MetricsServer::Start(
      "127.0.0.1:0",
      []() -> MetricsSnapshot { throw std::runtime_error("boom"); },
      []() -> bool { throw 42; });  // not even a std::exception
  ASSERT_OK(server);
  ASSERT_OK_AND_ASSIGN(HttpReply metrics, Fetch((*server)->port(), "/metrics"));
  EXPECT_EQ(metrics.status, 500);
  EXPECT_THAT(metrics.body, HasSubstr("boom"));
  ASSERT_OK_AND_ASSIGN(HttpReply health, Fetch((*server)->port(), "/healthz"));
  EXPECT_EQ(health.status, 503);
}

TEST(MetricsServerStartTest, StartAndStopRightAway) {
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsServer::Start(
        "127.0.0.1:0", [] { return MetricsSnapshot{}; }, [] { return true; });
    ASSERT_OK(server);
  }
}

TEST(MetricsServerStartTest, MalformedAddresses) {
  for (const std::string address :
       {"", "127.0.0.1", "127.0.0.1:", ":9464", "localhost:9464",
        "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80x",
        "1.2.3:80", "::1:9464", "[::1]9464", "[::1:9464", "[127.0.0.1]:80",
        "[]:80"}) {
    auto server = MetricsServer::Start(
        address, [] { return MetricsSnapshot{}; }, [] { return true; });
    EXPECT_STATUS(server, absl::StatusCode::kInvalidArgument,
                  absl::StrCat("\"", address, "\""));
  }
}

TEST(MetricsServerStartTest, Ipv6Loopback) {
  auto server = MetricsServer::Start(
      "[::1]:0", [] { return MetricsSnapshot{}; }, [] { return true; });
  if (!server.ok() &&
      absl::StrContains(server.status().message(), "Cannot assign")) {
    GTEST_SKIP() << "no IPv6 loopback: " << server.status();
  }
  ASSERT_OK(server);
  EXPECT_GT((*server)->port(), 0);
}

}  // namespace
}  // namespace egress
