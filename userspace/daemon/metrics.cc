#include "userspace/daemon/metrics.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <list>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

constexpr char kMetricsContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";

// Any local process can connect to the server, and a kubelet probe that gets
// no answer within its timeout (5 s in deploy/kubernetes) has the pod killed:
// idle and slow clients must not keep a scrape or a probe waiting. So every
// connection is served by a thread of its own (a stalled client holds only
// its own), up to kMetricsMaxConnections at once; a connection beyond that is
// answered 503 and closed at once instead of queueing. And every connection
// ends within bounded time, however slowly its client sends or reads:
// - a request (request line, headers, body: at most kMaxRequestBytes) must
//   arrive whole within kRequestTimeout of the connection opening, or of its
//   first byte after a previous answer; httplib's own timeouts apply to each
//   read only, so a client sending a byte a second would hold on forever;
// - an idle connection between requests is closed after kKeepAliveTimeout,
//   and after kMaxRequestsPerConnection answers;
// - an answer must be taken in kResponseTimeout, never kWriteStallTimeout
//   without progress.
constexpr absl::Duration kRequestTimeout = absl::Seconds(3);
constexpr absl::Duration kKeepAliveTimeout = absl::Seconds(1);
constexpr size_t kMaxRequestsPerConnection = 5;
constexpr absl::Duration kResponseTimeout = absl::Seconds(30);
constexpr absl::Duration kWriteStallTimeout = absl::Seconds(5);
constexpr size_t kMaxRequestBody = 4096;
// Request line (httplib allows 8 KiB), a few headers, a body: Prometheus and
// the kubelet send a few hundred bytes.
constexpr size_t kMaxRequestBytes = 32 * 1024;
// httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled
// into Debian's library): in a burst of connections the kernel drops the SYNs
// beyond it, and a probe among them waits a second or more for its retry.
constexpr int kListenBacklog = 128;
// How often a connection thread that waits looks whether the server stops.
constexpr absl::Duration kStopCheckInterval = absl::Milliseconds(100);

// The exposition format must be UTF-8, and Prometheus rejects the whole
// scrape on one bad label value, so invalid sequences become U+FFFD.
std::string ValidUtf8(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF &&
         !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(in.data() + i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// Counters carry doubles: exact up to 2^53, which no egress counter reaches.
double AsValue(uint64_t v) { return static_cast<double>(v); }

prometheus::Family<prometheus::Counter>& CounterFamily(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

// Adds `value` to the series: a duplicate label set in the snapshot sums.
void Count(prometheus::Family<prometheus::Counter>& family,
           const prometheus::Labels& labels, uint64_t value) {
  family.Add(labels).Increment(AsValue(value));
}

// Sets the series: for a duplicate label set the last one wins.
void Set(prometheus::Family<prometheus::Gauge>& family,
         const prometheus::Labels& labels, uint64_t value) {
  family.Add(labels).Set(AsValue(value));
}

// The DNS learning counters of the targets with name rules.
void AddDnsCounters(const MetricsSnapshot& s, prometheus::Registry& registry) {
  auto& dns_queries =
      CounterFamily(registry, "egress_dns_queries_total",
                    "DNS queries of the target to port 53 remembered "
                    "(targets with name rules).");
  auto& dns_over_rate = CounterFamily(
      registry, "egress_dns_queries_over_rate_total",
      "DNS queries of the target over its share of the pending-query table "
      "(2,048 a second): sent, not remembered, so their answers bind "
      "nothing.");
  auto& dns_answers =
      CounterFamily(registry, "egress_dns_answers_total",
                    "DNS messages from port 53 to the target's sockets.");
  auto& dns_ignored = CounterFamily(
      registry, "egress_dns_answers_ignored_total",
      "DNS answers that bound nothing, by reason: malformed, no_query (no "
      "query of the socket asked it), resolver_not_allowed, no_rule (no name "
      "rule covers the question), no_address (an rcode or no A/AAAA), "
      "not_message_start (a TCP segment that starts no message).");
  auto& dns_learned = CounterFamily(
      registry, "egress_dns_bindings_learned_total",
      "Addresses bound (or renewed) to a name rule from an answer.");
  auto& dns_refused = CounterFamily(
      registry, "egress_dns_bindings_refused_total",
      "Addresses an answer brought that were not bound: the map of learned "
      "addresses, or the address's name slots, were full.");
  auto& dns_swept =
      CounterFamily(registry, "egress_dns_bindings_swept_total",
                    "Learned addresses deleted by egressd long after they "
                    "expired.");
  auto& dns_resolver_source = CounterFamily(
      registry, "egress_dns_resolver_source_refused_total",
      "Packets the target sent from port 53 of an address it may query as "
      "its resolver, refused: they would answer its own queries.");
  for (const auto& t : s.targets) {
    if (!t.names) continue;
    const std::string name = ValidUtf8(t.name);
    Count(dns_queries, {{"target", name}}, t.dns.queries);
    Count(dns_over_rate, {{"target", name}}, t.dns.queries_over_rate);
    Count(dns_answers, {{"target", name}}, t.dns.answers);
    const std::pair<const char*, uint64_t> ignored[] = {
        {"malformed", t.dns.ignored_malformed},
        {"no_query", t.dns.ignored_no_query},
        {"resolver_not_allowed", t.dns.ignored_resolver},
        {"no_rule", t.dns.ignored_no_rule},
        {"not_message_start", t.dns.ignored_stream},
        {"no_address", t.dns.answers_empty}};
    for (const auto& [reason, n] : ignored) {
      Count(dns_ignored, {{"target", name}, {"reason", reason}}, n);
    }
    Count(dns_learned, {{"target", name}}, t.dns.bindings_learned);
    Count(dns_refused, {{"target", name}}, t.dns.refused_full);
    Count(dns_swept, {{"target", name}}, t.dns.bindings_swept);
    Count(dns_resolver_source, {{"target", name}},
          t.dns.resolver_source_refused);
  }
}

// Who the enforced containers are, joined to the per-target series by
// `target` (as kube_pod_info is joined by pod).
void AddWorkloadInfo(const MetricsSnapshot& s, prometheus::Registry& registry) {
  auto& info = GaugeFamily(
      registry, "egress_workload_info",
      "Running containers a target selects (always 1): name, short id, image, "
      "pod, node, and the labels the target's selector names.");
  const std::string node = ValidUtf8(s.node);
  for (const MetricsSnapshot::Workload& w : s.workloads) {
    prometheus::Labels labels = {{"target", ValidUtf8(w.target)},
                                 {"container", ValidUtf8(w.container)},
                                 {"container_id", ValidUtf8(w.container_id)},
                                 {"image", ValidUtf8(w.image)},
                                 {"pod_namespace", ValidUtf8(w.pod_namespace)},
                                 {"pod", ValidUtf8(w.pod)},
                                 {"node", node}};
    for (const auto& [name, value] : w.selector_labels) {
      labels.emplace(name, ValidUtf8(value));
    }
    Set(info, labels, 1);
  }
  Set(GaugeFamily(registry, "egress_workload_info_omitted",
                  absl::StrCat("egress_workload_info series left out of this "
                               "scrape: those past the first ",
                               kMaxWorkloadSeries, " (target, container).")),
      {}, s.workloads_omitted);
}

void FillRegistry(const MetricsSnapshot& s, prometheus::Registry& registry) {
  // Counters first, then gauges: Registry::Collect keeps that order, and
  // registering in the header's order keeps the exposition in it too.
  auto& verdicts = CounterFamily(
      registry, "egress_verdicts_total",
      "Egress verdicts (kernel counters) by target, verdict and protocol.");
  for (const auto& v : s.verdicts) {
    Count(verdicts,
          {{"target", ValidUtf8(v.target)},
           {"verdict", ValidUtf8(v.verdict)},
           {"proto", ValidUtf8(v.protocol)}},
          v.count);
  }
  auto& rule_hits = CounterFamily(
      registry, "egress_rule_hits_total",
      "Matches per policy rule, by the rule's id (egressctl list -o json); "
      "rule_id 0 is the target's default action.");
  for (const auto& r : s.rule_hits) {
    Count(rule_hits,
          {{"target", ValidUtf8(r.target)},
           {"rule_id", std::to_string(r.rule_id)}},
          r.hits);
  }
  auto& rule_hits_not_counted = CounterFamily(
      registry, "egress_rule_hits_not_counted_total",
      "Decisions not counted in egress_rule_hits_total: the kernel's map "
      "of rule hits (65,536 rules with hits, all targets) was full.");
  for (const auto& t : s.targets) {
    Count(rule_hits_not_counted, {{"target", ValidUtf8(t.name)}},
          t.rule_hits_not_counted);
  }

  auto& sockets_denied =
      CounterFamily(registry, "egress_sockets_denied_total",
                    "Raw and ping socket creations refused.");
  auto& source_routes_denied =
      CounterFamily(registry, "egress_source_routes_denied_total",
                    "Source routing (IPv4 LSRR/SSRR, IPv6 routing header) "
                    "refused or dropped.");
  auto& events_lost =
      CounterFamily(registry, "egress_events_lost_total",
                    "Events lost to a full ring buffer (still counted).");
  auto& events_suppressed = CounterFamily(
      registry, "egress_events_suppressed_total",
      "Events not reported due to rate limiting (still counted).");
  auto& peers_recorded =
      CounterFamily(registry, "egress_udp_peers_recorded_total",
                    "UDP peers recorded (a peer's first datagram to a "
                    "socket of the target), which it may answer.");
  auto& peers_not_recorded =
      CounterFamily(registry, "egress_udp_peers_not_recorded_total",
                    "UDP peers the kernel failed to record.");
  auto& peers_evicted = CounterFamily(
      registry, "egress_udp_peers_evicted_total",
      "UDP peers recorded that the full map evicted: they can no longer be "
      "answered (recorded - deleted - kept, every few seconds at most).");
  for (const auto& t : s.targets) {
    const prometheus::Labels labels = {{"target", ValidUtf8(t.name)}};
    Count(sockets_denied, labels, t.sockets_denied);
    Count(source_routes_denied, labels, t.source_routes_denied);
    Count(events_lost, labels, t.events_lost);
    Count(events_suppressed, labels, t.events_suppressed);
    Count(peers_recorded, labels, t.udp_peers_recorded);
    Count(peers_not_recorded, labels, t.udp_peers_not_recorded);
    Count(peers_evicted, labels, t.udp_peers_evicted);
  }

  // The DNS families only when a target has name rules: no empty families
  // for the rest.
  const bool names = std::any_of(s.targets.begin(), s.targets.end(),
                                 [](const auto& t) { return t.names; });
  if (names) AddDnsCounters(s, registry);

  Count(CounterFamily(registry, "egress_events_read_total",
                      "Event records read from the ring buffer."),
        {}, s.events_read);
  auto& dropped =
      CounterFamily(registry, "egress_events_dropped_total",
                    "Event records egressd could not deliver, by reason: a "
                    "follower's full buffer, or a sink's failed write.");
  Count(dropped, {{"reason", "follower"}}, s.events_dropped);
  Count(dropped, {{"reason", "sink"}}, s.events_sink_errors);
  Count(CounterFamily(
            registry, "egress_metrics_connections_refused_total",
            "Connections to this endpoint answered 503 because it already "
            "served its limit of them at once (slow or idle clients)."),
        {}, s.metrics_connections_refused);
  Count(CounterFamily(registry, "egress_udp_peers_evicted_all_targets_total",
                      "UDP peers evicted, of every target since egressd "
                      "started (removed targets included)."),
        {}, s.udp_peers_evicted);

  auto& flows = GaugeFamily(
      registry, "egress_flows_active",
      "TCP connections of the target currently open (opened minus closed, "
      "both directions), unexplained ones included.");
  auto& peers = GaugeFamily(registry, "egress_udp_peers",
                            "UDP peers of the target recorded now.");
  auto& rules = GaugeFamily(registry, "egress_policy_rules",
                            "Rules in the target's loaded policy.");
  auto& hooks = GaugeFamily(registry, "egress_attached_hooks",
                            "BPF programs currently attached for the target.");
  auto* dns_bindings =
      names ? &GaugeFamily(registry, "egress_dns_bindings",
                           "Addresses the target learned from DNS answers "
                           "that are bound now (at egressd's last sweep, "
                           "every 5 s).")
            : nullptr;
  auto& info = GaugeFamily(registry, "egress_target_info",
                           "Configured targets and their mode (always 1).");
  auto& degraded =
      GaugeFamily(registry, "egress_target_degraded",
                  "1 when the field self-check found the target not enforced.");
  for (const auto& t : s.targets) {
    const std::string name = ValidUtf8(t.name);
    Set(flows, {{"target", name}}, t.flows_active);
    Set(peers, {{"target", name}}, t.udp_peers_live);
    Set(rules, {{"target", name}}, t.rules);
    Set(hooks, {{"target", name}}, t.hooks_attached);
    if (t.names) Set(*dns_bindings, {{"target", name}}, t.dns.bindings_live);
    Set(info, {{"target", name}, {"mode", ValidUtf8(t.mode)}}, 1);
    Set(degraded, {{"target", name}}, t.degraded ? 1 : 0);
  }
  AddWorkloadInfo(s, registry);
  Count(CounterFamily(registry, "egress_self_check_failures_total",
                      "Self-check probes and checks that found a target "
                      "not enforced."),
        {}, s.self_check_failures);

  Set(GaugeFamily(registry, "egress_config_last_reload_successful",
                  "Whether the last configuration reload succeeded."),
      {}, s.last_reload_ok ? 1 : 0);
  if (s.shared_program_set_loaded.has_value()) {
    Set(GaugeFamily(registry, "egress_shared_program_set_loaded",
                    "1 once the shared program set is loaded and verified: "
                    "egressd's start work is done, and a first target "
                    "attaches without waiting for the verifier."),
        {}, *s.shared_program_set_loaded ? 1 : 0);
  }
  Set(GaugeFamily(registry, "egress_build_info",
                  "egressd build information (always 1)."),
      {{"version", ValidUtf8(s.version)},
       {"libbpf_version", ValidUtf8(s.libbpf_version)},
       {"node", ValidUtf8(s.node)}},
      1);
}

// Runs `fn`, which calls libraries that throw (prometheus-cpp, cpp-httplib),
// and turns what they throw into a status that says what failed.
template <typename Fn>
auto Guarded(absl::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": unknown exception"));
  }
}

absl::StatusOr<std::string> Render(const MetricsSnapshot& snapshot) {
  return Guarded("formatting metrics", [&]() -> absl::StatusOr<std::string> {
    prometheus::Registry registry;
    FillRegistry(snapshot, registry);
    std::vector<prometheus::MetricFamily> families = registry.Collect();
    // Families keep series in a hash map: sort for a stable exposition.
    for (auto& family : families) {
      std::sort(
          family.metric.begin(), family.metric.end(),
          [](const prometheus::ClientMetric& a,
             const prometheus::ClientMetric& b) { return a.label < b.label; });
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
  });
}

struct ListenAddress {
  std::string host;  // numeric, without brackets
  int port = 0;
};

// "<ipv4>:<port>" or "[<ipv6>]:<port>", numeric only.
absl::StatusOr<ListenAddress> ParseAddress(const std::string& address) {
  auto malformed = [&address](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", absl::CEscape(address), "\": ", why,
                     " (expected <ipv4>:<port> or [<ipv6>]:<port>)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return malformed("no port");
  absl::string_view host = absl::string_view(address).substr(0, colon);
  const absl::string_view port = absl::string_view(address).substr(colon + 1);
  int family = AF_INET;
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return malformed("unbalanced brackets");
    }
    host = host.substr(1, host.size() - 2);
    family = AF_INET6;
  }
  if (host.empty()) return malformed("no host");
  ListenAddress parsed;
  parsed.host = std::string(host);
  in6_addr buf;
  if (inet_pton(family, parsed.host.c_str(), &buf) != 1) {
    return malformed(family == AF_INET6 ? "not an IPv6 address"
                                        : "not an IPv4 address");
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &parsed.port) || parsed.port > 65535) {
    return malformed("bad port");
  }
  return parsed;
}

// Replaces httplib's default of SO_REUSEPORT, which would let a second
// egressd bind the same port and silently split the scrapes.
void ListenSocketOptions(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

// "ip", port of a socket address (getsockname or getpeername).
void IpAndPort(const sockaddr_storage& addr, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = "";
  ip.clear();
  port = 0;
  if (addr.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &addr, sizeof(sin));
    if (inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text))) ip = text;
    port = ntohs(sin.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &addr, sizeof(sin6));
    if (inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text))) ip = text;
    port = ntohs(sin6.sin6_port);
  }
}

// One accepted connection as httplib's request parser and response writer
// see it, with the deadlines of the constants above: each read fails once the
// request's deadline or byte budget is spent, each write once the answer's
// deadline passes or the client takes nothing for kWriteStallTimeout, and
// both once the server stops. The socket is used non-blocking (MSG_DONTWAIT)
// so that only poll() waits, and only up to a deadline.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(int sock, const std::atomic<bool>& stopping)
      : sock_(sock), stopping_(stopping) {}

  // Waits up to `timeout` for the first byte of the next request (true if
  // there is one) and starts its deadline and byte budget.
  bool AwaitRequest(absl::Duration timeout) {
    if (buffered_ == 0 && !WaitFor(POLLIN, absl::Now() + timeout)) {
      return false;
    }
    StartRequest();
    return true;
  }
  // Starts a request's deadline and byte budget, and the answer's deadline
  // at its first write.
  void StartRequest() {
    read_deadline_ = absl::Now() + kRequestTimeout;
    read_budget_ = kMaxRequestBytes;
    write_deadline_ = absl::InfiniteFuture();
  }

  bool is_readable() const override {
    return buffered_ > 0 || WaitFor(POLLIN, read_deadline_);
  }
  bool is_writable() const override {
    return WaitFor(POLLOUT, WriteWaitDeadline());
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (buffered_ == 0) {
      if (read_budget_ == 0) return -1;
      const size_t want = std::min(buffer_.size(), read_budget_);
      ssize_t n;
      while ((n = recv(sock_, buffer_.data(), want, MSG_DONTWAIT)) < 0) {
        if (errno != EAGAIN && errno != EINTR) return -1;
        if (!WaitFor(POLLIN, read_deadline_)) return -1;
      }
      if (n == 0) return 0;  // the client closed its side
      read_budget_ -= static_cast<size_t>(n);
      buffer_start_ = 0;
      buffered_ = static_cast<size_t>(n);
    }
    const size_t taken = std::min(size, buffered_);
    std::memcpy(ptr, buffer_.data() + buffer_start_, taken);
    buffer_start_ += taken;
    buffered_ -= taken;
    return static_cast<ssize_t>(taken);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (write_deadline_ == absl::InfiniteFuture()) {
      write_deadline_ = absl::Now() + kResponseTimeout;
    }
    ssize_t n;
    while ((n = send(sock_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0) {
      if (errno != EAGAIN && errno != EINTR) return -1;
      if (!WaitFor(POLLOUT, WriteWaitDeadline())) return -1;
    }
    // httplib repeats a write that returned 0 without end.
    return size > 0 && n == 0 ? -1 : n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      addr.ss_family = AF_UNSPEC;
    }
    IpAndPort(addr, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      addr.ss_family = AF_UNSPEC;
    }
    IpAndPort(addr, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  absl::Time WriteWaitDeadline() const {
    return std::min(write_deadline_, absl::Now() + kWriteStallTimeout);
  }

  // Whether `events` (POLLIN, POLLOUT) come before `deadline`; false also
  // once the server stops, or on a socket error or hang-up.
  bool WaitFor(int16_t events, absl::Time deadline) const {
    for (;;) {
      if (stopping_.load()) return false;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      const absl::Duration wait = std::min(left, kStopCheckInterval);
      pollfd p{sock_, events, 0};
      const int ready = poll(&p, 1,
                             static_cast<int>(absl::ToInt64Milliseconds(
                                 wait + absl::Milliseconds(1))));
      if (ready < 0 && errno != EINTR) return false;
      // POLLHUP and POLLERR end a wait for reading too: the read that
      // follows gets the end of the stream or the error.
      if (ready > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    }
  }

  const int sock_;
  const std::atomic<bool>& stopping_;
  std::array<char, 4096> buffer_{};
  size_t buffer_start_ = 0;
  size_t buffered_ = 0;
  absl::Time read_deadline_ = absl::Now() + kRequestTimeout;
  size_t read_budget_ = kMaxRequestBytes;
  absl::Time write_deadline_ = absl::InfiniteFuture();
};

constexpr char kBusyAnswer[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 22\r\n"
    "Connection: close\r\n"
    "\r\n"
    "too many connections\r\n";

// httplib's server with its connection handling replaced (see the constants
// above): httplib accepts, parses requests and writes answers; this class
// decides which connections are served, on what thread, and for how long.
class BoundedServer : public httplib::Server {
 public:
  BoundedServer() {
    // httplib hands each accepted socket to its task queue, which would hold
    // connections beyond the workers without bound. This queue runs the
    // hand-off on the accepting thread, so that process_and_close_socket
    // below admits or refuses the connection before the next accept.
    new_task_queue = [] { return new InlineTaskQueue(); };
    // Never more finished threads than threads: Serve's push_back cannot
    // allocate (or throw) then.
    finished_.reserve(kMetricsMaxConnections);
  }
  // Widens the listen backlog of the bound socket to kListenBacklog: 0, or
  // the errno of a failure, after which the socket is closed (httplib's
  // destructor does not close it).
  int WidenBacklog() {
    if (::listen(svr_sock_, kListenBacklog) == 0) return 0;
    const int err = errno;
    close(svr_sock_.exchange(INVALID_SOCKET));
    return err;
  }

  // Connections answered 503 so far.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // Stops the connection threads and waits for them; runs once the
  // listening loop has returned (no new connections).
  ~BoundedServer() override {
    stopping_ = true;
    std::list<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  class InlineTaskQueue : public httplib::TaskQueue {
   public:
    void enqueue(std::function<void()> fn) override { fn(); }
    void shutdown() override {}
  };

  // Called on the accepting thread (InlineTaskQueue); owns `sock`.
  bool process_and_close_socket(socket_t sock) override {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      JoinFinished();
      if (threads_.size() < kMetricsMaxConnections) {
        threads_.emplace_back([this, sock] { Serve(sock); });
        return true;
      }
    } catch (...) {
      // No thread (std::system_error) or no memory: refused like a surplus
      // connection.
    }
    refused_.fetch_add(1, std::memory_order_relaxed);
    // Best effort: the client may not even read it.
    send(sock, kBusyAnswer, sizeof(kBusyAnswer) - 1,
         MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(sock, SHUT_RDWR);
    close(sock);
    return false;
  }

  // The connection's thread: its requests, then its end.
  void Serve(socket_t sock) {
    try {
      ConnectionStream stream(sock, stopping_);
      stream.StartRequest();
      for (size_t answered = 0; answered < kMaxRequestsPerConnection;
           ++answered) {
        if (answered > 0 && !stream.AwaitRequest(kKeepAliveTimeout)) break;
        bool client_closes = false;
        const bool last = answered + 1 == kMaxRequestsPerConnection;
        if (!process_request(stream, last, client_closes, nullptr) ||
            client_closes || stopping_.load()) {
          break;
        }
      }
    } catch (...) {
      // Out of memory in httplib's parser: the connection just ends.
    }
    shutdown(sock, SHUT_RDWR);
    close(sock);
    std::lock_guard<std::mutex> lock(mu_);
    finished_.push_back(std::this_thread::get_id());  // reserved: no throw
  }

  // Joins the threads whose connection ended (they only return after
  // Serve's last lock). Requires mu_.
  void JoinFinished() {
    for (const std::thread::id id : finished_) {
      auto done = std::find_if(
          threads_.begin(), threads_.end(),
          [id](const std::thread& thread) { return thread.get_id() == id; });
      if (done == threads_.end()) continue;
      done->join();
      threads_.erase(done);
    }
    finished_.clear();
  }

  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> refused_{0};  // connections answered 503
  std::mutex mu_;
  std::list<std::thread> threads_;         // guarded by mu_
  std::vector<std::thread::id> finished_;  // guarded by mu_
};

}  // namespace

// Only allocation failure can fail here; the server reports it as a 500.
std::string FormatMetrics(const MetricsSnapshot& snapshot) {
  absl::StatusOr<std::string> text = Render(snapshot);
  return text.ok() ? *std::move(text) : std::string();
}

struct MetricsServer::Impl {
  ~Impl();
  void HandleMetrics(httplib::Response& res);
  void HandleHealth(httplib::Response& res);

  std::function<MetricsSnapshot()> source;
  std::function<bool()> healthy;
  // Destroyed after the listener is joined (~Impl), before the callbacks:
  // it waits for the connection threads, which call them.
  BoundedServer server;
  int port = 0;
  std::thread listener;
  std::mutex mu;
  std::condition_variable listener_done_cv;
  bool listener_done = false;  // guarded by mu
};

MetricsServer::Impl::~Impl() {
  if (!listener.joinable()) return;
  // httplib's stop() is a no-op until the listen loop has started (and must
  // not be repeated once it took effect), so wait for the loop to run first.
  {
    std::unique_lock<std::mutex> lock(mu);
    bool stopped = false;
    while (!listener_done) {
      if (!stopped && server.is_running()) {
        server.stop();
        stopped = true;
      }
      listener_done_cv.wait_for(lock, std::chrono::milliseconds(10));
    }
  }
  listener.join();
}

void MetricsServer::Impl::HandleMetrics(httplib::Response& res) {
  absl::StatusOr<std::string> text;
  try {
    MetricsSnapshot snapshot = source();
    snapshot.metrics_connections_refused = server.refused();
    text = Render(snapshot);
  } catch (const std::exception& e) {
    text = absl::InternalError(absl::StrCat("metrics source: ", e.what()));
  } catch (...) {
    text = absl::InternalError("metrics source: unknown exception");
  }
  if (!text.ok()) {
    res.status = 500;
    res.set_content(absl::StrCat(text.status().ToString(), "\n"),
                    kTextContentType);
    return;
  }
  res.status = 200;
  res.set_content(*std::move(text), kMetricsContentType);
}

void MetricsServer::Impl::HandleHealth(httplib::Response& res) {
  bool ok = false;
  try {
    ok = healthy();
  } catch (...) {
    ok = false;
  }
  res.status = ok ? 200 : 503;
  res.set_content(ok ? "ok\n" : "unhealthy\n", kTextContentType);
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::function<MetricsSnapshot()> source,
    std::function<bool()> healthy) {
  EGRESS_ASSIGN_OR_RETURN(ListenAddress addr, ParseAddress(address));
  if (!source || !healthy) {
    return absl::InvalidArgumentError("metrics server: missing callback");
  }
  using Started = absl::StatusOr<std::unique_ptr<MetricsServer>>;
  return Guarded("metrics server", [&]() -> Started {
    std::unique_ptr<MetricsServer> ms(new MetricsServer());
    ms->impl_ = std::make_unique<Impl>();
    Impl* impl = ms->impl_.get();
    impl->source = std::move(source);
    impl->healthy = std::move(healthy);

    httplib::Server& svr = impl->server;
    svr.set_socket_options(ListenSocketOptions);
    svr.set_payload_max_length(kMaxRequestBody);
    svr.Get("/metrics",
            [impl](const httplib::Request&, httplib::Response& res) {
              impl->HandleMetrics(res);
            });
    svr.Get("/healthz",
            [impl](const httplib::Request&, httplib::Response& res) {
              impl->HandleHealth(res);
            });

    // bind_to_any_port is bind_to_port(host, 0) that also reports the port.
    errno = 0;
    const int bound =
        addr.port == 0
            ? svr.bind_to_any_port(addr.host)
            : (svr.bind_to_port(addr.host, addr.port) ? addr.port : -1);
    if (bound <= 0) {
      const int err = errno;
      if (err != 0) return ErrnoStatus(err, "metrics server: bind", address);
      return absl::UnavailableError(
          absl::StrCat("metrics server: cannot listen on ", address));
    }
    if (const int err = impl->server.WidenBacklog(); err != 0) {
      return ErrnoStatus(err, "metrics server: listen", address);
    }
    impl->port = bound;
    impl->listener = std::thread([impl] {
      impl->server.listen_after_bind();
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->listener_done = true;
      impl->listener_done_cv.notify_all();
    });
    return ms;
  });
}

MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const { return impl_->port; }

}  // namespace egress
