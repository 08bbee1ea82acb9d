// Unix decisions after the kernel: how a record with a unix address is
// rendered (JSON, text, hint), kept by the learning store and turned into a
// suggested unix allow-list.
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "userspace/daemon/learn.h"
#include "userspace/events/event_json.h"
#include "userspace/events/event_line.h"
#include "userspace/events/event_record.h"
#include "userspace/events/event_render.h"
#include "userspace/events/event_text.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/suggest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A record of the connect_unix hook for sun_path `bytes`.
EventRecord UnixRecord(const std::string& bytes, uint8_t verdict,
                       uint8_t reason) {
  EventRecord r;
  egress_event& e = r.raw;
  e.kind = EGRESS_EVENT_VERDICT;
  e.hook = EGRESS_HOOK_CONNECT_UNIX;
  e.family = EGRESS_FAMILY_UNIX;
  e.verdict = verdict;
  e.reason = reason;
  e.sock_type = 1;  // SOCK_STREAM
  e.tgid = 77;
  std::strcpy(e.comm, "php");
  e.path_len = static_cast<uint32_t>(bytes.size());
  std::memcpy(e.path, bytes.data(), bytes.size());
  r.ctx.target = "web";
  return r;
}

TEST(UnixRecordTest, JsonNamesThePathInsteadOfL4) {
  EventRecord r = UnixRecord("/var/run/docker.sock", EGRESS_VERDICT_DENY,
                             EGRESS_REASON_NO_MATCH);
  const nlohmann::json j = EventToJson(r.raw, r.ctx);
  EXPECT_FALSE(j.contains("l4")) << j.dump();
  EXPECT_EQ(j["event"], "connect");
  EXPECT_EQ(j["hook"], "connect_unix");
  EXPECT_EQ(j["unix"], nlohmann::json({{"path", "/var/run/docker.sock"},
                                       {"abstract", false},
                                       {"type", "stream"}}));
  EXPECT_EQ(j["hint"],
            "egressctl allow unix /var/run/docker.sock --target web");
  EXPECT_EQ(j["message"],
            "Jan 01 00:00:00.000 web php[77] -> unix:/var/run/docker.sock "
            "stream DENIED (no matching rule)");
  // The fast writer leaves unix records to the tree: same bytes either way.
  EventLineWriter writer;
  std::string fast;
  EXPECT_FALSE(writer.Append(r.raw, r.ctx, &fast));
  std::string line;
  RenderJsonLine(r, writer, &line);
  EXPECT_EQ(line, j.dump());
}

TEST(UnixRecordTest, AbstractNamesAndOddBytes) {
  EventRecord r = UnixRecord(std::string("\0bus\0x\n\xff", 8),
                             EGRESS_VERDICT_AUDIT, EGRESS_REASON_MATCH_DENY);
  r.raw.hook = EGRESS_HOOK_SENDMSG_UNIX;
  r.raw.sock_type = 2;
  const nlohmann::json j = EventToJson(r.raw, r.ctx);
  EXPECT_EQ(j["event"], "sendmsg");
  EXPECT_EQ(j["unix"]["path"], "@bus@x??");
  EXPECT_EQ(j["unix"]["abstract"], true);
  EXPECT_EQ(j["unix"]["type"], "dgram");
  EXPECT_EQ(j["reason"], "MATCHED_DENY");
  EXPECT_THAT(RenderText(r), HasSubstr("-> unix:@bus@x?? dgram AUDIT"));
  // A deny rule decided: the hint names that rule, never the odd path.
  r.ctx.rule_number = 3;
  EXPECT_EQ(EventToJson(r.raw, r.ctx)["hint"],
            "egressctl delete 3 --target web");
  r.raw.reason = EGRESS_REASON_NO_MATCH;
  EXPECT_FALSE(EventToJson(r.raw, r.ctx).contains("hint"));
  // A path length past sun_path is cut at 108 bytes.
  r.raw.path_len = 1000;
  EXPECT_LE(UnixPathText(r.raw).size(), 108u);
}

// The hint is pasted into a shell, and the path comes from the process
// that connected: it is one shell word, whatever it holds.
TEST(UnixRecordTest, HintQuotesThePathForTheShell) {
  const struct {
    std::string path;
    std::string word;
  } kCases[] = {
      {"/tmp/x;touch /tmp/pwned;#", "'/tmp/x;touch /tmp/pwned;#'"},
      {"/tmp/$(id)`id`", "'/tmp/$(id)`id`'"},
      {"/tmp/it's", "'/tmp/it'\\''s'"},
      {"/run/a b", "'/run/a b'"},
      {"/tmp/*", "'/tmp/*'"},
      {"/run/php/php8.2-fpm.sock", "/run/php/php8.2-fpm.sock"},
      {std::string("\0bus:x@y+z", 10), "@bus:x@y+z"},
  };
  for (const auto& c : kCases) {
    EventRecord r =
        UnixRecord(c.path, EGRESS_VERDICT_DENY, EGRESS_REASON_NO_MATCH);
    EXPECT_EQ(EventToJson(r.raw, r.ctx)["hint"],
              "egressctl allow unix " + c.word + " --target web")
        << c.path;
  }
}

TEST(UnixLearnTest, StoreKeepsUnixAddressesApartAndRoundTrips) {
  LearnStore s;
  s.RecordUnix("web", "/run/php/php-fpm.sock", 2, 200, "php");
  s.RecordUnix("web", "/run/php/php-fpm.sock", 1, 100, "cron");
  s.RecordUnix("web", "@bus", 1, 300, "");
  s.RecordUnix("web", "", 5, 300, "x");  // ignored
  std::array<uint8_t, 16> a{10, 0, 0, 5};
  s.Record("web", 4, a, IPPROTO_TCP, 25, 1, 50, "php");
  std::vector<policy::Observation> q = s.Query("web", 0);
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].unix_path, "/run/php/php-fpm.sock");
  EXPECT_EQ(q[0].count, 3u);
  EXPECT_EQ(q[0].first_seen_ns, 100);
  EXPECT_EQ(q[0].last_seen_ns, 200);
  EXPECT_EQ(q[0].processes, (std::vector<std::string>{"cron", "php"}));
  EXPECT_EQ(q[1].unix_path, "@bus");
  EXPECT_EQ(q[2].unix_path, "");
  EXPECT_EQ(q[2].port, 25);
  const nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["targets"]["web"]["entries"][0]["unix"], "/run/php/php-fpm.sock");
  EXPECT_FALSE(j["targets"]["web"]["entries"][0].contains("port"));
  absl::StatusOr<LearnStore> back = LearnStore::FromJson(j, "learn.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), j);
  nlohmann::json bad = j;
  bad["targets"]["web"]["entries"][1]["unix"] = "relative.sock";
  EXPECT_THAT(LearnStore::FromJson(bad, "learn.json").status().message(),
              HasSubstr("learn.json: targets.web.entries[1].unix: unix "
                        "address 'relative.sock'"));
}

TEST(UnixSuggestTest, SeenUnixAddressesBecomeAnAllowList) {
  policy::Observation fpm;
  fpm.unix_path = "/run/php/php-fpm.sock";
  fpm.count = 3;
  fpm.processes = {"php"};
  policy::Observation bus = fpm;
  bus.unix_path = "@bus";
  bus.count = 1;
  policy::SuggestOptions o;
  o.name = "web";
  o.target = {policy::TargetSource::kUnit, "web.service"};
  absl::StatusOr<std::string> yaml = policy::SuggestPolicy({fpm, bus}, o);
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_THAT(*yaml, HasSubstr("and 2 unix sockets"));
  EXPECT_THAT(*yaml, HasSubstr("/run/php/php-fpm.sock: 3 attempts by php"));
  absl::StatusOr<policy::Policy> p = policy::ParsePolicy(*yaml, "web.yaml");
  ASSERT_TRUE(p.ok()) << p.status() << "\n" << *yaml;
  ASSERT_EQ(p->rules.size(), 1u);
  EXPECT_EQ(p->rules[0].unix_paths,
            (std::vector<std::string>{"/run/php/php-fpm.sock", "@bus"}));
  // Applied, it is an allow-list.
  std::vector<policy::Rule> rules = p->rules;
  rules[0].id = 1;
  absl::StatusOr<policy::CompiledRuleset> c = policy::Compile(1, rules);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->flags & EGRESS_TF_UNIX_ALLOWLIST, EGRESS_TF_UNIX_ALLOWLIST);
  // A bad address is refused, naming the observation.
  bus.unix_path = "bus";
  EXPECT_THAT(policy::SuggestPolicy({fpm, bus}, o).status().message(),
              HasSubstr("observation 1: unix address 'bus'"));
  // No unix address seen: no unix rule, unix stays unrestricted.
  absl::StatusOr<std::string> none = policy::SuggestPolicy({}, o);
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, Not(HasSubstr("unix:")));
}

}  // namespace
}  // namespace egress
