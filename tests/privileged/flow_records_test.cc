// Flow records (established/closed) as an admin sees them through
// `egressctl events`: they follow the target's logging level and the record
// rate limit, while the flow counters stay exact.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class FlowRecordsTest : public EgressdTest {
 protected:
  // The target's records, oldest first.
  nlohmann::json Records(const std::string& target) {
    CommandResult r =
        Ctl({"events", "--target", target, "--last", "10000", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    nlohmann::json events = nlohmann::json::array();
    for (absl::string_view line :
         absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      events.push_back(j);
    }
    return events;
  }

  // How many records of `event` the target has.
  static int Count(const nlohmann::json& events, const std::string& event) {
    int n = 0;
    for (const auto& e : events) n += e.value("event", "") == event;
    return n;
  }

  // A TCP connection from the target to `port` of 127.0.0.2, opened and
  // closed `n` times in one process.
  int Connections(uint16_t port, int n) {
    return InCgroup([port, n] {
      for (int i = 0; i < n; ++i) {
        if (int rc = TcpConnect("127.0.0.2", port); rc != 0) return rc;
      }
      return 0;
    });
  }
};

TEST_F(FlowRecordsTest, LoggingOffMakesNoFlowRecordsButCountsEveryFlow) {
  auto server = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "127.0.0.2"});
  CtlOk({"logging", "off", "--target", "web"});
  ASSERT_EQ(Connections(port, 3), 0);
  AwaitFlowsClosed("web", 3);
  // Past egressd's 50 ms drain period: anything emitted would be read.
  absl::SleepFor(absl::Milliseconds(300));
  nlohmann::json events = Records("web");
  EXPECT_EQ(events.size(), 0u) << events.dump(2);
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["flows_opened"], 3);
  EXPECT_EQ(c["events_suppressed"], 0);

  // Back at `denied`, the next flow has both of its records.
  CtlOk({"logging", "denied", "--target", "web"});
  ASSERT_EQ(Connections(port, 1), 0);
  AwaitFlowsClosed("web", 4);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    events = Records("web");
    if (events.size() >= 2) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_EQ(Count(events, "established"), 1) << events.dump(2);
  EXPECT_EQ(Count(events, "closed"), 1) << events.dump(2);
  ASSERT_EQ(events.size(), 2u) << events.dump(2);
  EXPECT_EQ(events[0]["flow"]["cookie"], events[1]["flow"]["cookie"]);
}

// 20 connections to one server within the 1 s window: 5 flows reported
// (each with both records), 15 held back, counted in events_suppressed and
// reported by egressd's sweep as one held_back record of that peer.
TEST_F(FlowRecordsTest, FlowRecordsAreRateLimitedPerPeerAndPaired) {
  auto server = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "127.0.0.2"});
  constexpr int kFlows = 20;
  ASSERT_EQ(Connections(port, kFlows), 0);
  AwaitFlowsClosed("web", kFlows);
  nlohmann::json events;
  uint64_t held_back = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(100));
    events = Records("web");
    held_back = 0;
    for (const auto& e : events) {
      if (e.value("event", "") == "held_back") {
        held_back += e["suppressed"].get<uint64_t>();
        EXPECT_EQ(e["hook"], "sock_ops") << e.dump();
        EXPECT_EQ(e["verdict"], "ALLOWED") << e.dump();
        EXPECT_EQ(e["l4"]["destination"], "127.0.0.2") << e.dump();
        EXPECT_EQ(e["l4"]["destination_port"], port) << e.dump();
      }
    }
  } while (held_back < kFlows - 5 && absl::Now() < deadline);
  EXPECT_EQ(Count(events, "established"), 5) << events.dump(2);
  EXPECT_EQ(Count(events, "closed"), 5) << events.dump(2);
  EXPECT_EQ(held_back, static_cast<uint64_t>(kFlows - 5)) << events.dump(2);
  // Every reported flow has both of its records.
  for (const auto& e : events) {
    if (e.value("event", "") != "established") continue;
    int closed = 0;
    for (const auto& f : events) {
      closed += f.value("event", "") == "closed" &&
                f["flow"]["cookie"] == e["flow"]["cookie"];
    }
    EXPECT_EQ(closed, 1) << e.dump();
  }
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["flows_opened"], kFlows);
  EXPECT_EQ(c["events_suppressed"], kFlows - 5);
}

// An outbound flow's records name the rule that allows it, over IPv4 and
// IPv6, and a flow that no rule allows (let through by audit mode) is
// unexplained. Also a guard for any shortcut that hands connect4/6's
// decision to sock_ops instead of deciding again (bench/README.md, "Flow
// storage at connect").
TEST_F(FlowRecordsTest, FlowCarriesTheRuleThatAllowedItsConnect) {
  auto v4 = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(v4.ok()) << v4.status();
  auto v6 = TcpListener::Create("::1", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(v6.ok()) << v6.status();
  auto unlisted = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(unlisted.ok()) << unlisted.status();
  AddTarget("web");
  // Rule 1 is for another port: the flows are rule 2's and rule 3's.
  CtlOk({"allow", absl::StrCat((*unlisted)->port(), "/tcp"), "127.0.0.9"});
  CtlOk({"allow", absl::StrCat((*v4)->port(), "/tcp"), "127.0.0.2"});
  CtlOk({"allow", absl::StrCat((*v6)->port(), "/tcp"), "::1"});
  const uint16_t p4 = (*v4)->port(), p6 = (*v6)->port();
  ASSERT_EQ(InCgroup([p4, p6] {
              if (int rc = TcpConnect("127.0.0.2", p4); rc != 0) return rc;
              return TcpConnect("::1", p6);
            }),
            0);
  AwaitFlowsClosed("web", 2);
  nlohmann::json events;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    events = Records("web");
    if (events.size() >= 4) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  ASSERT_EQ(events.size(), 4u) << events.dump(2);
  for (const auto& e : events) {
    const uint16_t port = e["l4"]["destination_port"].get<uint16_t>();
    EXPECT_EQ(e["verdict"], "ALLOWED") << e.dump();
    EXPECT_EQ(e["rule_id"], port == p4 ? 2 : 3) << e.dump();
    EXPECT_EQ(e["reason"], "MATCHED_ALLOW") << e.dump();
    EXPECT_TRUE(port == p4 || port == p6) << e.dump();
  }
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["flows_opened"], 2);
  EXPECT_EQ(c["flows_unexplained"], 0);

  // Audit mode lets a connect no rule allows through: its flow is
  // unexplained.
  CtlOk({"mode", "audit", "--target", "web"});
  const uint16_t pu = (*unlisted)->port();
  ASSERT_EQ(InCgroup([pu] { return TcpConnect("127.0.0.2", pu); }), 0);
  AwaitFlowsClosed("web", 3);
  EXPECT_EQ(Counters("web")["flows_unexplained"], 1);
}

// A TCP socket may connect again after a refused attempt. In audit mode the
// first attempt goes to a closed port a rule allows, the second to a port no
// rule allows (let through by audit): the flow that results is unexplained,
// not the first attempt's rule's. A decision handed from connect to sock_ops
// must be forgotten by the second connect (the first try of that shortcut
// failed this test).
TEST_F(FlowRecordsTest, ReconnectAfterARefusedAttemptDoesNotKeepItsRule) {
  auto closed = ReservedPort::Create();
  ASSERT_TRUE(closed.ok()) << closed.status();
  auto server = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(server.ok()) << server.status();
  AddTarget("web", nullptr, "audit");
  CtlOk({"allow", absl::StrCat((*closed)->port(), "/tcp"), "127.0.0.2"});
  const uint16_t refused = (*closed)->port(), open = (*server)->port();
  ASSERT_EQ(
      InCgroup([refused, open] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return errno;
        sockaddr_in to = MakeSockaddrIn("127.0.0.2", refused);
        int rc = connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0
                     ? 0
                     : errno;
        if (rc != ECONNREFUSED) {
          close(fd);
          return rc == 0 ? EEXIST : rc;
        }
        to = MakeSockaddrIn("127.0.0.2", open);
        rc = connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0
                 ? 0
                 : errno;
        close(fd);
        return rc;
      }),
      0);
  AwaitFlowsClosed("web", 1);
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["flows_opened"], 1);
  EXPECT_EQ(c["flows_unexplained"], 1);
}

}  // namespace
}  // namespace egress::testing
