// What the learner takes as evidence of what a target initiated: replies to
// peers and packets refused for how they were sent are not; decisions the
// rate limit held back add to their destination; unix addresses no rule can
// name are left out with a warning instead of breaking `suggest`.
#include "userspace/daemon/learner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/learner_fixture.h"
#include "userspace/daemon/learn.h"
#include "userspace/daemon/learn_history.h"

namespace egress {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A verdict record of target "web": `verdict` for 127.0.0.`octet`:`port`.
egress_event Verdict(uint8_t verdict, uint8_t reason, uint8_t octet,
                     uint16_t port, uint8_t proto = IPPROTO_UDP,
                     uint8_t hook = EGRESS_HOOK_SENDMSG4) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.verdict = verdict;
  e.reason = reason;
  e.hook = hook;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = proto;
  e.port = htons(port);
  e.addr[0] = 127;
  e.addr[3] = octet;
  e.ts_ns = 1;
  e.tgid = 42;
  memcpy(e.comm, "app", 4);
  return e;
}

// An audit record of a unix connect to the raw address bytes `path`.
egress_event UnixAudit(const std::string& path) {
  egress_event e{};
  e.kind = EGRESS_EVENT_VERDICT;
  e.verdict = EGRESS_VERDICT_AUDIT;
  e.reason = EGRESS_REASON_NO_MATCH;
  e.hook = EGRESS_HOOK_CONNECT_UNIX;
  e.family = EGRESS_FAMILY_UNIX;
  e.path_len = static_cast<uint32_t>(path.size());
  memcpy(e.path, path.data(), path.size());
  e.ts_ns = 1;
  memcpy(e.comm, "app", 4);
  return e;
}

using LearnerTest = LearnerFixture;

TEST_F(LearnerTest, RepliesToPeersAreNeverProposedAsEgress) {
  // Where allows are recorded (`logging all`, audit mode) a UDP server's
  // replies leave allow records too.
  Learn(Verdict(EGRESS_VERDICT_ALLOW, EGRESS_REASON_UDP_REPLY, 50, 40998));
  Learn(Verdict(EGRESS_VERDICT_ALLOW, EGRESS_REASON_MATCH_ALLOW, 53, 53));
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("127.0.0.53/32"));
  EXPECT_THAT(yaml, Not(HasSubstr("127.0.0.50")));
  EXPECT_THAT(yaml, Not(HasSubstr("40998")));
}

TEST_F(LearnerTest, PacketsRefusedForHowTheyWereSentNameNoDestination) {
  for (uint8_t reason :
       {EGRESS_REASON_SOURCE_ROUTE, EGRESS_REASON_NONLOCAL_SOURCE,
        EGRESS_REASON_RESOLVER_SOURCE, EGRESS_REASON_RATE_LIMITED}) {
    Learn(Verdict(EGRESS_VERDICT_AUDIT, reason, 60 + reason, 53, IPPROTO_UDP,
                  EGRESS_HOOK_SKB_EGRESS));
  }
  Learn(Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 9, 443,
                IPPROTO_TCP, EGRESS_HOOK_CONNECT4));
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("127.0.0.9/32"));
  EXPECT_THAT(yaml, Not(HasSubstr("127.0.0.6")));
}

TEST_F(LearnerTest, HeldBackAuditDecisionsAddToTheirDestination) {
  Learn(Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 2, 18111));
  egress_event summary =
      Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_RATE_LIMITED, 2, 18111);
  summary.kind = EGRESS_EVENT_HELD_BACK;
  summary.suppressed = 995;
  summary.tgid = 0;
  memset(summary.comm, 0, sizeof(summary.comm));
  Learn(summary);
  // A held-back allow may stand for replies: its reasons are not kept.
  egress_event allowed =
      Verdict(EGRESS_VERDICT_ALLOW, EGRESS_REASON_RATE_LIMITED, 3, 4000);
  allowed.kind = EGRESS_EVENT_HELD_BACK;
  allowed.suppressed = 50;
  Learn(allowed);
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("996 attempts"));
  EXPECT_THAT(yaml, Not(HasSubstr("127.0.0.3")));
}

TEST_F(LearnerTest, UnixAddressesNoRuleCanNameAreLeftOutWithAWarning) {
  Learn(UnixAudit(std::string("\0", 1)));  // empty abstract name
  std::string padded("\0padded", 7);
  padded.resize(108, '\0');  // sizeof(sun_path): the NUL-padding idiom
  Learn(UnixAudit(padded));
  Learn(UnixAudit(std::string("\0a\0b", 4)));
  Learn(UnixAudit("/run/ctl\x01"));
  Learn(UnixAudit("/run/what?.sock"));  // a real '?' is a real address
  Learn(UnixAudit(std::string("\0kept", 5)));
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("WARNING: 4 attempts to unix addresses"));
  EXPECT_THAT(yaml, HasSubstr("/run/what?.sock"));
  EXPECT_THAT(yaml, HasSubstr("\"@kept\""));
  // Not in the rule; named in the warning (the padding shown short).
  EXPECT_THAT(yaml, Not(HasSubstr("- \"@padded")));
  EXPECT_THAT(yaml, Not(HasSubstr("- \"@a@b")));
  EXPECT_THAT(yaml, HasSubstr("2 to abstract names padded with NULs"));
  EXPECT_THAT(yaml, HasSubstr("'@padded@...'"));
  EXPECT_THAT(yaml, HasSubstr("1 to empty abstract names"));
  EXPECT_THAT(yaml, HasSubstr("1 to addresses with control or NUL bytes"));
}

// The warning says what was left out and why: a relative path (a rule
// names an absolute path) and non-ASCII bytes are not "padded abstract
// names", and the first addresses of each are listed, also after a restart.
TEST_F(LearnerTest, UnixAddressesLeftOutAreListedWithWhy) {
  Learn(UnixAudit("run/app.sock"));
  Learn(UnixAudit("run/app.sock"));
  Learn(UnixAudit("/tmp/caf\xc3\xa9.sock"));
  for (int i = 0; i < 5; ++i) Learn(UnixAudit(absl::StrCat("rel", i)));
  ASSERT_OK(learner_->Flush());
  Restart();
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("WARNING: 8 attempts to unix addresses")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("7 to relative paths")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("'run/app.sock'")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("1 to addresses with non-ASCII bytes")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("'/tmp/caf??.sock'")) << yaml;
  EXPECT_THAT(yaml, Not(HasSubstr("padded"))) << yaml;
  // At most 3 addresses of a why are listed.
  int listed = 0;
  for (int i = 0; i < 5; ++i) {
    if (absl::StrContains(yaml, absl::StrCat("'rel", i, "'"))) ++listed;
  }
  EXPECT_EQ(listed, 2) << yaml;  // and run/app.sock
}

TEST_F(LearnerTest, AStoredUnixAddressNoRuleCanNameDoesNotBreakSuggest) {
  // A row an older egressd kept: the empty abstract name.
  policy::Observation o;
  o.unix_path = "@";
  o.count = 3;
  o.first_seen_ns = o.last_seen_ns = absl::GetCurrentTimeNanos();
  o.processes = {"app"};
  {
    auto h = LearnHistory::Open(dir_ + "/learned.db", {});
    ASSERT_OK(h.status());
    ASSERT_OK((*h)->Add("web", {o}, absl::GetCurrentTimeNanos()));
  }
  Learn(Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 7, 25,
                IPPROTO_TCP, EGRESS_HOOK_CONNECT4));
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("WARNING: 3 attempts to unix addresses"));
  EXPECT_THAT(yaml, HasSubstr("127.0.0.7/32"));
}

TEST_F(LearnerTest, LoggingOffIsSaidToHideEverything) {
  web_.logging = policy::LoggingLevel::kOff;
  EXPECT_THAT(Suggestion(), HasSubstr("WARNING: the target's logging is off"));
  web_.logging = policy::LoggingLevel::kDenied;
  EXPECT_THAT(Suggestion(), Not(HasSubstr("logging is off")));
}

// An enforcing target at logging `denied` records only what is refused and
// its TCP flows: a re-suggestion would drop the resolver (53/udp) and unix
// rules in force, so the header says so; in audit mode, or at `all`,
// allowed decisions are recorded and nothing is said.
TEST_F(LearnerTest, EnforcingAtLoggingDeniedIsSaidToHideAllowedDatagrams) {
  egress_event flow = Verdict(EGRESS_VERDICT_ALLOW, EGRESS_REASON_MATCH_ALLOW,
                              9, 443, IPPROTO_TCP, EGRESS_HOOK_CONNECT4);
  flow.kind = EGRESS_EVENT_FLOW_ESTABLISHED;
  flow.direction = EGRESS_DIR_OUTBOUND;
  Learn(flow, /*allows_recorded=*/false);
  web_.mode = policy::Mode::kEnforce;
  web_.logging = policy::LoggingLevel::kDenied;
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("WARNING: the target enforces at logging "
                              "`denied`"));
  EXPECT_THAT(yaml, HasSubstr("egressctl logging all"));
  web_.logging = policy::LoggingLevel::kAll;
  EXPECT_THAT(Suggestion(), Not(HasSubstr("enforces at logging")));
  web_.mode = policy::Mode::kAudit;
  web_.logging = policy::LoggingLevel::kDenied;
  EXPECT_THAT(Suggestion(), Not(HasSubstr("enforces at logging")));
}

// What learning had to leave out is warned about after a restart too, and
// only for the window suggest reads.
TEST_F(LearnerTest, WhatWasLeftOutIsWarnedAboutAfterARestart) {
  // One flush keeps 4,096 new destinations (LearnStore): 4 more overflow.
  for (int i = 0; i < 4100; ++i) {
    egress_event e = Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 1,
                             static_cast<uint16_t>(1000 + i));
    e.addr[2] = static_cast<uint8_t>(i / 250);
    e.addr[3] = static_cast<uint8_t>(i % 250 + 1);
    Learn(e);
  }
  Learn(UnixAudit(std::string("\0", 1)));
  const std::string first = Suggestion();
  EXPECT_THAT(first, HasSubstr("WARNING: 4 attempts to further destinations"));
  EXPECT_THAT(first, HasSubstr("WARNING: 1 attempt to unix addresses"));
  Restart();  // egressd restarted
  const std::string again = Suggestion();
  EXPECT_THAT(again, HasSubstr("WARNING: 4 attempts to further destinations"));
  EXPECT_THAT(again, HasSubstr("WARNING: 1 attempt to unix addresses"));
  // --since 0s: a window with nothing in it, nothing left out either.
  auto r = learner_->Suggest(web_, {"web", 0, 32, 128}, "node");
  ASSERT_OK(r.status());
  EXPECT_THAT(r->yaml, Not(HasSubstr("WARNING")));
}

// The names the target's addresses were resolved from outlive a restart:
// a connect after it, to an address looked up before it, is still learned
// by name.
TEST_F(LearnerTest, NamesOfAddressesOutliveARestart) {
  egress_dns_answer_event answer{};
  answer.kind = EGRESS_EVENT_DNS_ANSWER;
  answer.qtype = EGRESS_DNS_TYPE_A;
  memcpy(answer.qname, "cdn1.shop.test", 14);
  answer.addrs[0].addr[0] = 127;
  answer.addrs[0].addr[3] = 2;
  answer.addrs[0].ttl = 60;
  answer.naddrs = 1;
  learner_->LearnAnswer(answer, "web", absl::GetCurrentTimeNanos());
  ASSERT_OK(learner_->Flush());
  Restart();  // egressd restarted
  Learn(Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 2, 18082,
                IPPROTO_TCP, EGRESS_HOOK_CONNECT4));
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("cdn1.shop.test"));
  EXPECT_THAT(yaml, Not(HasSubstr("127.0.0.2/32")));
}

// An answer of target "web" binding `name` to 127.0.0.`octet`, TTL 1 s (the
// floor, 30 s, rules), at boot time `ts_ns`.
egress_dns_answer_event AnswerOf(const char* name, uint8_t octet,
                                 uint64_t ts_ns = 1) {
  egress_dns_answer_event answer{};
  answer.kind = EGRESS_EVENT_DNS_ANSWER;
  answer.qtype = EGRESS_DNS_TYPE_A;
  answer.ts_ns = ts_ns;
  memcpy(answer.qname, name, strlen(name));
  answer.addrs[0].addr[0] = 127;
  answer.addrs[0].addr[3] = octet;
  answer.addrs[0].ttl = 1;
  answer.naddrs = 1;
  answer.server[0] = 127;
  answer.server[3] = 53;
  answer.server_port = htons(53);
  answer.server_family = EGRESS_FAMILY_IPV4;
  answer.proto = IPPROTO_UDP;
  return answer;
}

// A destination counts as reached by a name only while the answer's binding
// would be live when enforced (max(TTL, floor)): an address resolved once
// and reached 40 s later as a literal stays an address rule, or the
// literal connect is refused once the suggestion is enforced.
TEST_F(LearnerTest, AnAddressReachedAfterItsBindingExpiredStaysAnAddress) {
  constexpr uint64_t kSecond = 1'000'000'000;
  const int64_t offset = absl::GetCurrentTimeNanos();
  learner_->LearnAnswer(AnswerOf("db.other.test", 22), "web", offset);
  learner_->LearnAnswer(AnswerOf("api.example.test", 21), "web", offset);
  egress_event api = Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 21,
                             8080, IPPROTO_TCP, EGRESS_HOOK_CONNECT4);
  api.ts_ns = 2 * kSecond;  // within the binding: by name
  learner_->Learn(api, "web", true, offset);
  egress_event literal = Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH,
                                 22, 8083, IPPROTO_TCP, EGRESS_HOOK_CONNECT4);
  literal.ts_ns = 40 * kSecond;  // the binding is gone: by address
  learner_->Learn(literal, "web", true, offset);
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("127.0.0.22/32")) << yaml;
  EXPECT_THAT(yaml, Not(HasSubstr("db.other.test"))) << yaml;
  EXPECT_THAT(yaml, HasSubstr("api.example.test")) << yaml;
  EXPECT_THAT(yaml, Not(HasSubstr("127.0.0.21/32"))) << yaml;
}

// The resolver stays an address rule even when the target looked its
// address up: a name rule for it could only be learned from its own
// answers, so every lookup would fail once enforced.
TEST_F(LearnerTest, TheResolverStaysAnAddressEvenWhenItsAddressWasResolved) {
  const int64_t offset = absl::GetCurrentTimeNanos();
  learner_->LearnAnswer(AnswerOf("ns.resolver.test", 53), "web", offset);
  egress_event query = Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 53,
                               53, IPPROTO_UDP, EGRESS_HOOK_SENDMSG4);
  query.ts_ns = 2;
  learner_->Learn(query, "web", true, offset);
  const std::string yaml = Suggestion();
  EXPECT_THAT(yaml, HasSubstr("127.0.0.53/32")) << yaml;
  EXPECT_THAT(yaml, Not(HasSubstr("ns.resolver.test"))) << yaml;
}

// An older egressd's learned.json, imported but not renamed (here a
// directory holds learned.json.migrated): egressd starts all the same, and
// the next start does not import the file again (counting it twice), as
// learned.db keeps which file it imported.
TEST_F(LearnerTest, AnImportedLearnedJsonThatCannotBeRenamedCountsOnce) {
  const std::string json = dir_ + "/learned.json";
  LearnStore old;
  old.Record("web", EGRESS_FAMILY_IPV4, {127, 0, 0, 3}, IPPROTO_TCP, 40003, 5,
             absl::GetCurrentTimeNanos(), "curl");
  ASSERT_OK(old.Save(json));
  ASSERT_EQ(mkdir((json + ".migrated").c_str(), 0700), 0);
  for (int start = 0; start < 3; ++start) {
    learner_.reset();
    learner_ = std::make_unique<Learner>(dir_);
    ASSERT_OK(learner_->Load()) << "start " << start;
    const std::string yaml = Suggestion();
    EXPECT_THAT(yaml, HasSubstr("127.0.0.3: 5 attempts by curl")) << yaml;
  }
  EXPECT_EQ(access(json.c_str(), F_OK), 0);
  // The same file copied with its times (cp -a, a restore; a reboot may
  // number the device anew): another inode, still the file imported.
  {
    std::ifstream in(json, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    struct stat st;
    ASSERT_EQ(stat(json.c_str(), &st), 0);
    const std::string copy = json + ".copy";
    std::ofstream(copy, std::ios::binary) << bytes;
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, copy.c_str(), times, 0), 0);
    ASSERT_EQ(rename(copy.c_str(), json.c_str()), 0);
  }
  learner_.reset();
  learner_ = std::make_unique<Learner>(dir_);
  ASSERT_OK(learner_->Load());
  EXPECT_THAT(Suggestion(), HasSubstr("127.0.0.3: 5 attempts by curl"));
  // Renamed once it can be, by the next start.
  ASSERT_EQ(rmdir((json + ".migrated").c_str()), 0);
  Restart();
  EXPECT_NE(access(json.c_str(), F_OK), 0);
  EXPECT_EQ(access((json + ".migrated").c_str(), F_OK), 0);
  EXPECT_THAT(Suggestion(), HasSubstr("127.0.0.3: 5 attempts by curl"));
}

TEST_F(LearnerTest, ALearnedJsonThatIsNoFileDoesNotStopTheStart) {
  // A directory where an older egressd kept learned.json: nothing to import,
  // and what learned.db holds is still suggested.
  Learn(Verdict(EGRESS_VERDICT_AUDIT, EGRESS_REASON_NO_MATCH, 4, 40004));
  ASSERT_OK(learner_->Flush());
  const std::string json = dir_ + "/learned.json";
  ASSERT_EQ(mkdir(json.c_str(), 0700), 0);
  for (int start = 0; start < 2; ++start) {
    learner_.reset();
    learner_ = std::make_unique<Learner>(dir_);
    ASSERT_OK(learner_->Load()) << "start " << start;
    ASSERT_OK(learner_->Flush());
    EXPECT_THAT(Suggestion(), HasSubstr("127.0.0.4")) << "start " << start;
  }
  struct stat st;
  ASSERT_EQ(stat(json.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode)) << "left where the admin made it";
}

}  // namespace
}  // namespace egress
