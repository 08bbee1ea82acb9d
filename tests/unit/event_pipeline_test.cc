// EventPipeline: records through context, observers, sinks, followers (real
// socketpairs) and the recent-records buffer.
#include "userspace/events/event_pipeline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_text.h"

namespace egress {
namespace {

egress_event Record(uint32_t target_id, uint8_t verdict, uint16_t port) {
  egress_event e{};
  e.ts_ns = 1'000'000'000ull * port;
  e.target_id = target_id;
  e.tgid = 10;
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = verdict;
  e.port = htons(port);
  inet_pton(AF_INET, "192.0.2.1", e.addr);
  std::strcpy(e.comm, "curl");
  return e;
}

// Target 1 is "web", 2 is "db".
EventContext Resolve(const egress_event& e) {
  EventContext ctx;
  ctx.target = e.target_id == 1 ? "web" : "db";
  ctx.node_name = "host1";
  return ctx;
}

// The client end of a follower's socketpair.
struct Client {
  UniqueFd fd;
  // What has arrived so far, split into lines.
  std::vector<std::string> Lines() {
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      got.append(buf, static_cast<size_t>(n));
    }
    std::vector<std::string> lines = absl::StrSplit(got, '\n');
    lines.pop_back();  // after the last newline
    return lines;
  }
  std::string got;
};

Client Follow(EventPipeline& p, EventFilter filter, EventFormat format) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_TRUE(p.Follow(UniqueFd(sv[0]), std::move(filter), format).ok());
  return Client{UniqueFd(sv[1])};
}

EventPipelineOptions Options() {
  EventPipelineOptions o;
  o.resolve_context = Resolve;
  return o;
}

std::string JsonOf(const egress_event& e) {
  EventLineWriter writer;
  std::string line;
  RenderJsonLine(EventRecord{e, Resolve(e)}, writer, &line);
  return line;
}

TEST(EventPipelineTest, FollowersGetWhatTheirFilterMatchesInTheirFormat) {
  EventPipeline p(Options());
  Client all_json = Follow(p, EventFilter{}, EventFormat::kJson);
  Client web_denied_text =
      Follow(p, *MakeEventFilter("web", "deny"), EventFormat::kText);
  const egress_event a = Record(1, EGRESS_VERDICT_DENY, 1);
  const egress_event b = Record(2, EGRESS_VERDICT_DENY, 2);
  const egress_event c = Record(1, EGRESS_VERDICT_ALLOW, 3);
  for (const egress_event& e : {a, b, c}) p.OnRecord(e);
  p.Flush();
  EXPECT_EQ(all_json.Lines(),
            (std::vector<std::string>{JsonOf(a), JsonOf(b), JsonOf(c)}));
  EXPECT_EQ(web_denied_text.Lines(),
            std::vector<std::string>{RenderText(EventRecord{a, Resolve(a)})});
  EXPECT_EQ(web_denied_text.Lines()[0],
            "Jan 01 00:00:01.000 web curl[10] -> 192.0.2.1:1/tcp DENIED (no "
            "matching rule)");
  EXPECT_EQ(p.records_read(), 3u);
  EXPECT_EQ(p.records_dropped(), 0u);
}

TEST(EventPipelineTest, SlowFollowerLosesRecordsCountedNotMemory) {
  EventPipelineOptions o = Options();
  o.followers.buffer_bytes = 1000;
  EventPipeline p(std::move(o));
  Client slow = Follow(p, EventFilter{}, EventFormat::kJson);
  const size_t line = JsonOf(Record(1, EGRESS_VERDICT_DENY, 7)).size() + 1;
  const size_t fit = 1000 / line;
  ASSERT_GT(fit, 0u);
  // No Flush between records: the buffer is all a follower has.
  for (size_t i = 0; i < fit + 5; ++i) {
    p.OnRecord(Record(1, EGRESS_VERDICT_DENY, 7));
  }
  EXPECT_EQ(p.records_dropped(), 5u);
  p.Flush();
  // The stream says what it lost, in the follower's format, once the
  // buffer has room for the notice.
  std::vector<std::string> lines = slow.Lines();
  ASSERT_EQ(lines.size(), fit + 1);
  EXPECT_EQ(lines.back(),
            "{\"dropped\":5,\"event\":\"records_dropped\",\"message\":"
            "\"egressd dropped 5 records for this client: it did not read them "
            "as fast as they came\"}");
  // The next record that fits follows the notice; nothing is told twice.
  p.OnRecord(Record(1, EGRESS_VERDICT_DENY, 8));
  p.Flush();
  lines = slow.Lines();
  ASSERT_EQ(lines.size(), fit + 2);
  EXPECT_EQ(lines.back(), JsonOf(Record(1, EGRESS_VERDICT_DENY, 8)));
}

TEST(EventPipelineTest, TextFollowerIsToldItsLossInText) {
  EventPipelineOptions o = Options();
  o.followers.buffer_bytes = 1000;
  EventPipeline p(std::move(o));
  Client slow = Follow(p, EventFilter{}, EventFormat::kText);
  const egress_event e = Record(1, EGRESS_VERDICT_DENY, 7);
  const size_t fit = 1000 / (RenderText(EventRecord{e, Resolve(e)}).size() + 1);
  for (size_t i = 0; i < fit + 3; ++i) p.OnRecord(e);
  p.Flush();
  std::vector<std::string> lines = slow.Lines();
  ASSERT_EQ(lines.size(), fit + 1);
  EXPECT_EQ(lines.back(),
            "egressd dropped 3 records for this client: it did not read them "
            "as fast as they came");
  EXPECT_EQ(p.records_dropped(), 3u);
}

TEST(EventPipelineTest, BacklogAndStreamMeetWithoutGapOrRepeat) {
  EventPipeline p(Options());
  const egress_event a = Record(1, EGRESS_VERDICT_DENY, 1);
  const egress_event b = Record(1, EGRESS_VERDICT_DENY, 2);
  const egress_event c = Record(1, EGRESS_VERDICT_DENY, 3);
  p.OnRecord(a);
  absl::StatusOr<EventPipeline::FollowStart> start =
      p.StartFollow(EventFilter{}, 10, EventFormat::kJson);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->backlog, std::vector<std::string>{JsonOf(a)});
  // Drained while the backlog is being written: kept for the follower,
  // which has no socket yet.
  p.OnRecord(b);
  p.Flush();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Client client{UniqueFd(sv[1])};
  ASSERT_TRUE(p.AttachFollower(start->follower, UniqueFd(sv[0])).ok());
  p.OnRecord(c);
  p.Flush();
  EXPECT_EQ(client.Lines(), (std::vector<std::string>{JsonOf(b), JsonOf(c)}));
  EXPECT_EQ(p.AttachFollower(start->follower, UniqueFd()).code(),
            absl::StatusCode::kNotFound);
}

TEST(EventPipelineTest, FollowerWhoseBacklogFailedIsRemoved) {
  EventPipelineOptions o = Options();
  o.followers.max_followers = 1;
  EventPipeline p(std::move(o));
  absl::StatusOr<EventPipeline::FollowStart> start =
      p.StartFollow(EventFilter{}, 0, EventFormat::kText);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(p.followers(), 1u);
  EXPECT_EQ(p.CanFollow().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(p.AttachFollower(start->follower, UniqueFd()).ok());
  EXPECT_EQ(p.followers(), 0u);
  EXPECT_TRUE(p.CanFollow().ok());
}

TEST(EventPipelineTest, OwnRecordsAreDeliveredButNotCountedAsRead) {
  EventPipeline p(Options());
  Client client = Follow(p, EventFilter{}, EventFormat::kJson);
  egress_event cut = Record(1, EGRESS_VERDICT_DENY, 5);
  cut.kind = EGRESS_EVENT_CUT;
  p.OnRecord(Record(1, EGRESS_VERDICT_DENY, 4));
  p.OnRecord(cut, EventPipeline::Origin::kEgressd);
  p.Flush();
  EXPECT_EQ(p.records_read(), 1u);
  EXPECT_EQ(client.Lines().size(), 2u);
  EXPECT_EQ(p.Recent(EventFilter{}, 10).size(), 2u);
}

TEST(EventPipelineTest, AtMostMaxFollowers) {
  EventPipelineOptions o = Options();
  o.followers.max_followers = 2;
  EventPipeline p(std::move(o));
  Client a = Follow(p, EventFilter{}, EventFormat::kJson);
  Client b = Follow(p, EventFilter{}, EventFormat::kJson);
  EXPECT_EQ(p.CanFollow().code(), absl::StatusCode::kResourceExhausted);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd keep(sv[1]);
  EXPECT_EQ(p.Follow(UniqueFd(sv[0]), EventFilter{}, EventFormat::kText).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(EventPipelineTest, DisconnectedFollowerIsRemoved) {
  EventPipeline p(Options());
  Client gone = Follow(p, EventFilter{}, EventFormat::kText);
  Client stays = Follow(p, EventFilter{}, EventFormat::kText);
  EXPECT_EQ(p.followers(), 2u);
  gone.fd.reset();
  p.Flush();  // the hang-up is seen even with nothing to write
  EXPECT_EQ(p.followers(), 1u);
  p.OnRecord(Record(1, EGRESS_VERDICT_DENY, 1));
  p.Flush();
  EXPECT_EQ(stays.Lines().size(), 1u);
  EXPECT_TRUE(p.CanFollow().ok());
}

// `events --target NAME` of a removed target: its records are still kept,
// under the name they were drained with, until newer ones push them out.
TEST(EventPipelineTest, KeepsRecordsOfANameUntilTheyArePushedOut) {
  EventPipelineOptions o = Options();
  o.recent_records = 2;
  EventPipeline p(std::move(o));
  EXPECT_FALSE(p.KeepsRecordsOf("web"));
  p.OnRecord(Record(1, EGRESS_VERDICT_DENY, 1));
  EXPECT_TRUE(p.KeepsRecordsOf("web"));
  EXPECT_FALSE(p.KeepsRecordsOf("db"));
  p.OnRecord(Record(2, EGRESS_VERDICT_DENY, 2));
  p.OnRecord(Record(2, EGRESS_VERDICT_DENY, 3));
  EXPECT_FALSE(p.KeepsRecordsOf("web"));
  EXPECT_TRUE(p.KeepsRecordsOf("db"));
}

TEST(EventPipelineTest, RecentIsOldestFirstBoundedAndFiltered) {
  EventPipelineOptions o = Options();
  o.recent_records = 5;
  EventPipeline p(std::move(o));
  for (uint16_t port = 1; port <= 8; ++port) {
    p.OnRecord(Record(port % 2 == 0 ? 1 : 2, EGRESS_VERDICT_DENY, port));
  }
  auto ports = [](const std::vector<EventRecord>& records) {
    std::vector<uint16_t> out;
    for (const EventRecord& r : records) out.push_back(ntohs(r.raw.port));
    return out;
  };
  // Kept: 4..8.
  EXPECT_EQ(ports(p.Recent(EventFilter{}, 100)),
            (std::vector<uint16_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(ports(p.Recent(EventFilter{}, 2)), (std::vector<uint16_t>{7, 8}));
  EXPECT_EQ(ports(p.Recent(*MakeEventFilter("web", ""), 100)),
            (std::vector<uint16_t>{4, 6, 8}));
  EXPECT_TRUE(p.Recent(*MakeEventFilter("", "allow"), 100).empty());
  EXPECT_TRUE(p.Recent(EventFilter{}, 0).empty());
  const egress_event last = Record(1, EGRESS_VERDICT_DENY, 8);
  EXPECT_EQ(p.RecentLines(EventFilter{}, 1, EventFormat::kJson),
            std::vector<std::string>{JsonOf(last)});
  EXPECT_EQ(
      p.RecentLines(EventFilter{}, 1, EventFormat::kText),
      std::vector<std::string>{RenderText(EventRecord{last, Resolve(last)})});
}

class CountingSink : public EventSink {
 public:
  void Write(RenderedEvent& event) override {
    lines.push_back(event.Json());
    texts.push_back(event.Text());
  }
  uint64_t errors() const override { return 7; }
  std::vector<std::string> lines, texts;
};

TEST(EventPipelineTest, SinkAndObserversSeeEveryRecordWithItsContext) {
  EventPipelineOptions o = Options();
  auto sink = std::make_shared<CountingSink>();
  o.sink = sink;
  std::vector<std::string> observed;
  o.observers.push_back(
      [&](const EventRecord& r) { observed.push_back(r.ctx.target); });
  EventPipeline p(std::move(o));
  const egress_event a = Record(1, EGRESS_VERDICT_AUDIT, 1);
  const egress_event b = Record(2, EGRESS_VERDICT_DENY, 2);
  p.OnRecord(a);
  p.OnRecord(b);
  EXPECT_EQ(observed, (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(sink->lines, (std::vector<std::string>{JsonOf(a), JsonOf(b)}));
  EXPECT_EQ(sink->texts[1], RenderText(EventRecord{b, Resolve(b)}));
  EXPECT_EQ(p.sink_errors(), 7u);
  EXPECT_EQ(EventPipeline(Options()).sink_errors(), 0u);
}

TEST(RenderedEventTest, EachFormatIsRenderedOnce) {
  EventLineWriter writer;
  const egress_event e = Record(1, EGRESS_VERDICT_DENY, 1);
  const EventRecord record{e, Resolve(e)};
  RenderedEvent rendered(record, writer);
  const std::string* json = &rendered.Json();
  const std::string* text = &rendered.Text();
  EXPECT_EQ(&rendered.Line(EventFormat::kJson), json);
  EXPECT_EQ(&rendered.Line(EventFormat::kText), text);
  EXPECT_EQ(*json, JsonOf(e));
}

TEST(VerdictWordTest, OneParserForEveryVerdictWord) {
  for (const char* word : {"deny", "Denied"}) {
    EXPECT_EQ(*ParseVerdictWord(word), EGRESS_VERDICT_DENY);
  }
  for (const char* word : {"allow", "ALLOWED"}) {
    EXPECT_EQ(*ParseVerdictWord(word), EGRESS_VERDICT_ALLOW);
  }
  EXPECT_EQ(*ParseVerdictWord("audit"), EGRESS_VERDICT_AUDIT);
  EXPECT_EQ(*ParseVerdictWord("unexplained"), EGRESS_VERDICT_UNEXPLAINED);
  absl::Status bad = ParseVerdictWord("dropped").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(),
            "unknown verdict 'dropped': use deny, audit, allow or unexplained");
  EXPECT_FALSE(MakeEventFilter("web", "dropped").ok());
  EXPECT_FALSE(MakeEventFilter("web", "").value().verdict.has_value());
}

}  // namespace
}  // namespace egress
