// Kernel records -> JSON lines.
#include "userspace/daemon/event_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "gtest/gtest.h"
#include "userspace/daemon/raw_capability.h"

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
  nlohmann::json j = EventToJson(e, "web");
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
  nlohmann::json j = EventToJson(e, "");
  EXPECT_EQ(j["l4"]["destination"], "2001:db8::1");
  EXPECT_EQ(j["l4"]["family"], "IPv6");
  EXPECT_EQ(j["verdict"], "AUDIT");
  EXPECT_EQ(j["process"]["comm"].get<std::string>().size(), 16u);
}

TEST(RawCapabilityTest, CapEffBit13) {
  EXPECT_TRUE(CapEffHasNetRaw("000001ffffffffff"));
  EXPECT_TRUE(CapEffHasNetRaw("0000000000002000"));
  EXPECT_FALSE(CapEffHasNetRaw("0000000000001fff"));
  EXPECT_FALSE(CapEffHasNetRaw("0000000000000000"));
}

}  // namespace
}  // namespace egress
