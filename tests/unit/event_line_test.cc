// The fixed-schema writer must produce exactly EventToJson(...).dump(), or
// decline so that the caller falls back to it.
#include "userspace/events/event_line.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"
#include "userspace/events/event_json.h"
#include "userspace/events/event_render.h"
#include "userspace/events/event_text.h"

namespace egress {
namespace {

egress_event Denied4(const char* comm) {
  egress_event e{};
  e.ts_ns = 123456789;
  e.cgroup_id = 7;
  e.pid = 11;
  e.tgid = 10;
  e.uid = 33;
  e.target_id = 1;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = EGRESS_VERDICT_DENY;
  e.port = htons(25);
  inet_pton(AF_INET, "10.0.0.5", e.addr);
  std::memcpy(e.comm, comm, std::min(std::strlen(comm), sizeof(e.comm) - 1));
  return e;
}

EventContext Ctx() {
  EventContext ctx;
  ctx.target = "web";
  ctx.cgroup_path = "/system.slice/nginx.service";
  ctx.node_name = "host-1";
  ctx.realtime_offset_ns = 1'700'000'000'000'000'000;
  return ctx;
}

void ExpectSame(const egress_event& e, const EventContext& ctx) {
  EventLineWriter writer;
  std::string line;
  ASSERT_TRUE(writer.Append(e, ctx, &line));
  EXPECT_EQ(line, EventToJson(e, ctx).dump());
}

TEST(EventLineTest, MatchesTheTreeForEveryVerdictKind) {
  ExpectSame(Denied4("nginx"), Ctx());
  egress_event audit = Denied4("php \"fpm\"\\");
  audit.verdict = EGRESS_VERDICT_AUDIT;
  audit.family = EGRESS_FAMILY_IPV6;
  audit.proto = IPPROTO_UDP;
  audit.hook = EGRESS_HOOK_SENDMSG6;
  inet_pton(AF_INET6, "2001:db8::53", audit.addr);
  audit.suppressed = 42;
  ExpectSame(audit, Ctx());
  egress_event explicit_deny = Denied4("curl");
  explicit_deny.reason = EGRESS_REASON_MATCH_DENY;
  explicit_deny.rule_id = 9;
  EventContext numbered = Ctx();
  numbered.rule_number = 3;
  ExpectSame(explicit_deny, numbered);
  egress_event sock = Denied4("python3");
  sock.hook = EGRESS_HOOK_SOCK_CREATE;
  sock.reason = EGRESS_REASON_SOCKET_TYPE;
  sock.sock_type = 3;
  ExpectSame(sock, Ctx());
  egress_event opt = Denied4("attacker");
  opt.hook = EGRESS_HOOK_SETSOCKOPT;
  opt.reason = EGRESS_REASON_SOURCE_ROUTE;
  std::memset(opt.addr, 0, sizeof(opt.addr));
  opt.port = 0;
  opt.proto = 0;
  EventLineWriter writer;
  std::string line;
  EXPECT_FALSE(writer.Append(opt, Ctx(), &line));  // the tree handles it
  egress_event allowed = Denied4("nginx");
  allowed.verdict = EGRESS_VERDICT_ALLOW;
  allowed.reason = EGRESS_REASON_MATCH_ALLOW;
  allowed.rule_id = 1;
  ExpectSame(allowed, EventContext{});
}

TEST(EventLineTest, DeclinesWhatItDoesNotCoverAndTheTreeNeverThrows) {
  EventLineWriter writer;
  std::string line;
  egress_event odd = Denied4("");
  const char bad[] = {'\xff', '\xfe', 'x', 0};
  std::memcpy(odd.comm, bad, sizeof(bad));
  EXPECT_FALSE(writer.Append(odd, Ctx(), &line));
  EXPECT_TRUE(line.empty());
  std::string dumped = EventToJson(odd, Ctx()).dump();
  EXPECT_NE(dumped.find("\"comm\":\"??x\""), std::string::npos) << dumped;
  egress_event existing = Denied4("");
  existing.kind = EGRESS_EVENT_EXISTING;
  EXPECT_FALSE(writer.Append(existing, Ctx(), &line));
  egress_event held = Denied4("");
  held.kind = EGRESS_EVENT_HELD_BACK;
  EXPECT_FALSE(writer.Append(held, Ctx(), &line));
}

// A TCP flow record as sock_ops writes it (no task: no process fields).
egress_event Flow(uint8_t kind, uint8_t direction) {
  egress_event e{};
  e.ts_ns = 987654321;
  e.target_id = 2;
  e.rule_id = 4;
  e.reason = EGRESS_REASON_MATCH_ALLOW;
  e.verdict = EGRESS_VERDICT_ALLOW;
  e.kind = kind;
  e.direction = direction;
  e.hook = EGRESS_HOOK_SOCK_OPS;
  e.proto = IPPROTO_TCP;
  e.family = EGRESS_FAMILY_IPV4;
  e.port = htons(443);
  e.local_port = 51234;
  inet_pton(AF_INET, "10.0.0.5", e.addr);
  e.cookie = 40961;
  e.srtt_us = 180;
  if (kind == EGRESS_EVENT_FLOW_CLOSED) {
    e.bytes_sent = 1000;
    e.bytes_received = 52311;
    e.duration_ns = 2500000000;
  }
  return e;
}

// Field for field (a key missing on either side shows by name), then byte
// for byte.
void ExpectSameFlow(const egress_event& e, const EventContext& ctx) {
  EventLineWriter writer;
  std::string line;
  ASSERT_TRUE(writer.Append(e, ctx, &line));
  const nlohmann::json tree = EventToJson(e, ctx);
  const nlohmann::json fast = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(fast.is_discarded()) << line;
  for (const auto& [key, value] : tree.items()) {
    ASSERT_TRUE(fast.contains(key)) << key << " missing: " << line;
    EXPECT_EQ(fast[key], value) << key;
  }
  for (const auto& [key, value] : fast.items()) {
    EXPECT_TRUE(tree.contains(key)) << key << " only in the fast line";
  }
  EXPECT_EQ(line, tree.dump());
}

TEST(EventLineTest, FlowRecordsMatchTheTreeFieldForField) {
  ExpectSameFlow(Flow(EGRESS_EVENT_FLOW_ESTABLISHED, EGRESS_DIR_OUTBOUND),
                 Ctx());
  ExpectSameFlow(Flow(EGRESS_EVENT_FLOW_CLOSED, EGRESS_DIR_OUTBOUND), Ctx());
  egress_event inbound6 = Flow(EGRESS_EVENT_FLOW_CLOSED, EGRESS_DIR_INBOUND);
  inbound6.family = EGRESS_FAMILY_IPV6;
  inet_pton(AF_INET6, "2001:db8::7", inbound6.addr);
  inbound6.rule_id = 0;
  inbound6.reason = EGRESS_REASON_NO_MATCH;
  ExpectSameFlow(inbound6, Ctx());
  egress_event unexplained =
      Flow(EGRESS_EVENT_FLOW_ESTABLISHED, EGRESS_DIR_OUTBOUND);
  unexplained.verdict = EGRESS_VERDICT_UNEXPLAINED;
  unexplained.rule_id = 0;
  unexplained.suppressed = 17;  // flows the rate limit held back before it
  ExpectSameFlow(unexplained, EventContext{});
  // A process name never comes with a flow from the kernel; if one did,
  // both writers show it alike.
  egress_event named = Flow(EGRESS_EVENT_FLOW_CLOSED, EGRESS_DIR_INBOUND);
  std::memcpy(named.comm, "nginx", sizeof("nginx"));
  named.tgid = 10;
  ExpectSameFlow(named, Ctx());
  // A flow is a flow whatever its hook field says.
  egress_event odd_hook = Flow(EGRESS_EVENT_FLOW_CLOSED, EGRESS_DIR_OUTBOUND);
  odd_hook.hook = EGRESS_HOOK_SOCK_CREATE;
  ExpectSameFlow(odd_hook, Ctx());
  // Flows never carry a hint, whatever their verdict field says.
  egress_event odd = Flow(EGRESS_EVENT_FLOW_ESTABLISHED, EGRESS_DIR_OUTBOUND);
  odd.verdict = EGRESS_VERDICT_DENY;
  odd.reason = EGRESS_REASON_NO_MATCH;
  ExpectSameFlow(odd, Ctx());
}

// Found by tests/fuzz/targets/event_fuzzer.cc: a process named "x\n..."
// (prctl PR_SET_NAME takes any bytes) or a target/cgroup name with a line
// break split the text form of its record in two, so it could write a
// record of its own making into syslog or `egressctl events`. Control bytes
// and DEL of names become '?', in both writers and in the text.
TEST(EventLineTest, NamesCannotBreakTheTextLine) {
  const char forged[] = "a\nDENIED\r\x7f";
  egress_event e = Denied4(forged);
  EventContext ctx = Ctx();
  ctx.target = "web\nfake";
  ctx.cgroup_path = "/x\ty";
  EventLineWriter writer;
  std::string line;
  EXPECT_FALSE(writer.Append(e, ctx, &line));  // the tree writes it
  const std::string dumped = EventToJson(e, ctx).dump();
  EXPECT_NE(dumped.find("\"comm\":\"a?DENIED??\""), std::string::npos)
      << dumped;
  EXPECT_NE(dumped.find("\"target\":\"web?fake\""), std::string::npos)
      << dumped;
  EXPECT_NE(dumped.find("\"path\":\"/x?y\""), std::string::npos) << dumped;
  const std::string text = RenderText(EventRecord{e, ctx});
  EXPECT_EQ(text.find_first_of("\n\r\t\x7f"), std::string::npos) << text;
}

// Found by tests/fuzz/targets/event_fuzzer.cc: ts_ns + realtime_offset_ns
// overflowed int64 (undefined; in practice a time centuries in the past).
// The sum is clamped: the latest representable time, in both writers and in
// the text form.
TEST(EventLineTest, TimesPastTheInt64RangeAreClampedNotWrapped) {
  egress_event late = Denied4("curl");
  late.ts_ns = std::numeric_limits<int64_t>::max() - 10;
  const EventContext ctx = Ctx();
  EXPECT_EQ(RecordUnixNs(late, ctx.realtime_offset_ns),
            std::numeric_limits<int64_t>::max());
  const std::string latest = "\"time\":\"2262-04-11T23:47:16.854775807Z\"";
  EventLineWriter writer;
  std::string line;
  RenderJsonLine(EventRecord{late, ctx}, writer, &line);
  EXPECT_NE(line.find(latest), std::string::npos) << line;
  EXPECT_EQ(RenderText(EventRecord{late, ctx}).substr(0, 6), "Apr 11");

  egress_event beyond = late;
  beyond.ts_ns = std::numeric_limits<uint64_t>::max();  // not negative
  EXPECT_EQ(RecordUnixNs(beyond, 0), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(RecordUnixNs(Denied4("x"), std::numeric_limits<int64_t>::min()),
            std::numeric_limits<int64_t>::min() + 123456789);
}

}  // namespace
}  // namespace egress
