// Kernel records -> JSON lines.
#include "userspace/events/event_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "gtest/gtest.h"
#include "userspace/daemon/raw_capability.h"
#include "userspace/events/event_line.h"

namespace egress {
namespace {

TEST(EventJsonTest, DeniedConnect4) {
  egress_event e{};
  e.ts_ns = 123;
  e.cgroup_id = 77;
  e.pid = 11;
  e.tgid = 10;
  e.uid = 33;
  e.target_id = 2;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_NO_MATCH;
  e.port = htons(25);
  inet_pton(AF_INET, "10.0.0.5", e.addr);
  std::strcpy(e.comm, "php-fpm8.2");
  EventContext ctx;
  ctx.target = "web";
  ctx.cgroup_path = "/system.slice/php.service";
  ctx.realtime_offset_ns = 1'000'000'000;
  nlohmann::json j = EventToJson(e, ctx);
  EXPECT_EQ(j["event"], "connect");
  EXPECT_EQ(j["time"], "1970-01-01T00:00:01.000000123Z");
  EXPECT_EQ(j["cgroup"]["path"], "/system.slice/php.service");
  EXPECT_EQ(j["hint"], "egressctl allow 25/tcp 10.0.0.5 --target web");
  EXPECT_EQ(j["suppressed"], 0);
  EXPECT_EQ(j["message"],
            "Jan 01 00:00:01.000 web php-fpm8.2[10] -> 10.0.0.5:25/tcp DENIED "
            "(no matching rule)");
  EXPECT_EQ(j["verdict"], "DENIED");
  EXPECT_EQ(j["reason"], "NO_MATCHING_RULE");
  EXPECT_EQ(j["hook"], "connect4");
  EXPECT_EQ(j["target"], "web");
  EXPECT_EQ(j["process"]["pid"], 10);
  EXPECT_EQ(j["process"]["tid"], 11);
  EXPECT_EQ(j["process"]["comm"], "php-fpm8.2");
  EXPECT_EQ(j["l4"]["destination"], "10.0.0.5");
  EXPECT_EQ(j["l4"]["destination_port"], 25);
  EXPECT_EQ(j["l4"]["protocol"], "tcp");
  EXPECT_EQ(j["cgroup"]["id"], 77);
}

TEST(EventJsonTest, Ipv6AndFullLengthComm) {
  egress_event e{};
  e.family = EGRESS_FAMILY_IPV6;
  e.proto = IPPROTO_UDP;
  e.hook = EGRESS_HOOK_SENDMSG6;
  e.verdict = EGRESS_VERDICT_AUDIT;
  inet_pton(AF_INET6, "2001:db8::1", e.addr);
  std::memset(e.comm, 'x', sizeof(e.comm));  // no terminating NUL
  nlohmann::json j = EventToJson(e, EventContext{});
  EXPECT_EQ(j["l4"]["destination"], "2001:db8::1");
  EXPECT_EQ(j["l4"]["family"], "IPv6");
  EXPECT_EQ(j["verdict"], "AUDIT");
  EXPECT_EQ(j["process"]["comm"].get<std::string>().size(), 16u);
}

TEST(EventJsonTest, HintsForEachKindOfRefusal) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.verdict = EGRESS_VERDICT_DENY;
  e.family = EGRESS_FAMILY_IPV6;
  e.proto = IPPROTO_UDP;
  e.port = htons(53);
  inet_pton(AF_INET6, "2001:db8::53", e.addr);
  EXPECT_EQ(AllowHint(e, "dns", 0),
            "egressctl allow 53/udp 2001:db8::53 --target dns");
  e.verdict = EGRESS_VERDICT_AUDIT;
  EXPECT_EQ(AllowHint(e, "", 0), "egressctl allow 53/udp 2001:db8::53");
  e.reason = EGRESS_REASON_MATCH_DENY;
  EXPECT_EQ(AllowHint(e, "dns", 4), "egressctl delete 4 --target dns");
  e.reason = EGRESS_REASON_SOURCE_ROUTE;
  EXPECT_EQ(AllowHint(e, "dns", 0), "");
  e.reason = EGRESS_REASON_NONLOCAL_SOURCE;
  EXPECT_EQ(AllowHint(e, "dns", 0), "");
  e.reason = EGRESS_REASON_SOCKET_TYPE;
  e.sock_type = 3;
  EXPECT_EQ(AllowHint(e, "dns", 0), "egressctl allow raw --target dns");
  e.verdict = EGRESS_VERDICT_ALLOW;
  EXPECT_EQ(AllowHint(e, "dns", 0), "");
}

// A destination a name rule decided names it (Hubble's destination_names);
// a refusal of an address never learned for the port's names says so. Both
// take the tree writer: the fast one declines them.
TEST(EventJsonTest, NamesOfDestinationsAndUnlearnedAddresses) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.port = htons(443);
  e.verdict = EGRESS_VERDICT_ALLOW;
  e.reason = EGRESS_REASON_MATCH_ALLOW;
  e.rule_id = 3;
  inet_pton(AF_INET, "192.0.2.7", e.addr);
  EventContext ctx;
  ctx.target = "web";
  ctx.destination_names = {"api.example.com", "*.cdn.example"};
  nlohmann::json j = EventToJson(e, ctx);
  EXPECT_EQ(j["destination_names"],
            nlohmann::json::array({"api.example.com", "*.cdn.example"}));
  EXPECT_NE(j["message"].get<std::string>().find(
                "ALLOWED (matched allow, name api.example.com, "
                "*.cdn.example)"),
            std::string::npos)
      << j["message"];
  std::string line;
  EventLineWriter writer;
  EXPECT_FALSE(writer.Append(e, ctx, &line));

  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_NO_MATCH;
  e.rule_id = 0;
  ctx.destination_names.clear();
  ctx.unlearned_names = {"api.example.com"};
  j = EventToJson(e, ctx);
  EXPECT_FALSE(j.contains("destination_names"));
  EXPECT_EQ(j["hint"],
            "192.0.2.7 was never an answer to the target's own DNS lookups of "
            "api.example.com (or that answer expired): the application "
            "connected to a hard-coded or cached address, or resolved the "
            "name without a DNS query of its own (see egressctl status); to "
            "allow the address: egressctl allow 443/tcp 192.0.2.7 --target "
            "web");
  EXPECT_NE(j["message"].get<std::string>().find(
                "DENIED (no matching rule, never an answer for "
                "api.example.com)"),
            std::string::npos)
      << j["message"];
  EXPECT_FALSE(writer.Append(e, ctx, &line));
  EXPECT_EQ(line, "");
  ctx.unlearned_names.clear();
  EXPECT_TRUE(writer.Append(e, ctx, &line));
}

TEST(EventJsonTest, ClosedFlow) {
  egress_event e{};
  e.kind = EGRESS_EVENT_FLOW_CLOSED;
  e.verdict = EGRESS_VERDICT_UNEXPLAINED;
  e.direction = EGRESS_DIR_OUTBOUND;
  e.family = EGRESS_FAMILY_IPV4;
  e.port = htons(443);
  e.local_port = 40000;
  e.bytes_sent = 100;
  e.bytes_received = 2000;
  e.duration_ns = 5;
  inet_pton(AF_INET, "192.0.2.1", e.addr);
  nlohmann::json j = EventToJson(e, EventContext{});
  EXPECT_EQ(j["event"], "closed");
  EXPECT_EQ(j["verdict"], "UNEXPLAINED");
  EXPECT_EQ(j["flow"]["direction"], "outbound");
  EXPECT_EQ(j["flow"]["bytes_sent"], 100);
  EXPECT_EQ(j["flow"]["bytes_received"], 2000);
  EXPECT_EQ(j["flow"]["duration_ns"], 5);
  EXPECT_EQ(j["l4"]["destination_port"], 443);
  EXPECT_EQ(j["l4"]["source_port"], 40000);
  EXPECT_FALSE(j.contains("hint"));
}

// The rate limit's summary of held-back decisions for a destination that
// was not tried again (made by bpf/limits_sweep.bpf.c): the destination as
// a verdict record shows it, no process, no hint, the count in suppressed.
TEST(EventJsonTest, HeldBackSummary) {
  egress_event e{};
  e.kind = EGRESS_EVENT_HELD_BACK;
  e.target_id = 2;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_UDP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_RATE_LIMITED;
  e.suppressed = 2;
  e.port = htons(40777);
  inet_pton(AF_INET, "127.0.0.77", e.addr);
  EventContext ctx;
  ctx.target = "web";
  nlohmann::json j = EventToJson(e, ctx);
  EXPECT_EQ(j["event"], "held_back");
  EXPECT_EQ(j["verdict"], "DENIED");
  EXPECT_EQ(j["reason"], "RATE_LIMITED");
  EXPECT_EQ(j["suppressed"], 2);
  EXPECT_EQ(j["l4"]["destination"], "127.0.0.77");
  EXPECT_EQ(j["l4"]["destination_port"], 40777);
  EXPECT_EQ(j["l4"]["protocol"], "udp");
  EXPECT_FALSE(j.contains("flow"));
  EXPECT_FALSE(j.contains("hint"));
  EXPECT_EQ(j["message"],
            "Jan 01 00:00:00.000 web -> 127.0.0.77:40777/udp DENIED (rate "
            "limited) +2 suppressed");
}

TEST(EventJsonTest, SelfCheckFailed) {
  egress_event e{};
  e.kind = EGRESS_EVENT_SELF_CHECK_FAILED;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_NOT_ENFORCED;
  e.port = htons(9);
  inet_pton(AF_INET, "192.0.2.1", e.addr);
  EventContext ctx;
  ctx.target = "web";
  nlohmann::json j = EventToJson(e, ctx);
  EXPECT_EQ(j["event"], "self_check_failed");
  EXPECT_EQ(j["reason"], "NOT_ENFORCED");
  EXPECT_EQ(j["l4"]["destination"], "192.0.2.1");
  EXPECT_FALSE(j.contains("hint"));
  EXPECT_EQ(j["message"],
            "Jan 01 00:00:00.000 web -> 192.0.2.1:9/tcp DENIED (not "
            "enforced)");
}

// A refused IPV6_FREEBIND: no destination yet, so the record names the
// option's kind and the socket's family; no rule can allow it.
TEST(EventJsonTest, NonlocalSourceRefusal) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.hook = EGRESS_HOOK_SETSOCKOPT;
  e.family = EGRESS_FAMILY_IPV6;
  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_NONLOCAL_SOURCE;
  EventContext ctx;
  ctx.target = "web";
  nlohmann::json j = EventToJson(e, ctx);
  EXPECT_EQ(j["reason"], "NONLOCAL_SOURCE_BLOCKED");
  EXPECT_EQ(j["socket"]["option"], "nonlocal_source");
  EXPECT_EQ(j["socket"]["family"], "IPv6");
  EXPECT_FALSE(j.contains("l4"));
  EXPECT_FALSE(j.contains("hint"));
  e.reason = EGRESS_REASON_SOURCE_ROUTE;
  EXPECT_EQ(EventToJson(e, ctx)["socket"]["option"], "source_route");
}

TEST(RawCapabilityTest, CapEffBit13) {
  EXPECT_TRUE(CapEffHasNetRaw("000001ffffffffff"));
  EXPECT_TRUE(CapEffHasNetRaw("0000000000002000"));
  EXPECT_FALSE(CapEffHasNetRaw("0000000000001fff"));
  EXPECT_FALSE(CapEffHasNetRaw("0000000000000000"));
}

}  // namespace
}  // namespace egress
