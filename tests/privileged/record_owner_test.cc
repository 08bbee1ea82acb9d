// Records belong to the target that made them: nested targets each close
// their own flow with their own rule; a target made again on the same
// cgroup, or added just after another was removed, is never named in what
// the one before it left behind (flows still open, held-back counts).
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"

namespace egress::testing {
namespace {

class RecordOwnerTest : public EgressdTest {
 protected:
  // The records of `target` of kind `event` ("established", "closed",
  // "held_back").
  static std::vector<nlohmann::json> OfKind(
      const std::vector<nlohmann::json>& records, const std::string& event) {
    std::vector<nlohmann::json> out;
    for (const auto& r : records) {
      if (r.value("event", "") == event) out.push_back(r);
    }
    return out;
  }
};

// A unit target inside a slice target: one connection is a flow of both,
// and each gets its established and its closed record, with the rule of its
// own that allowed it.
TEST_F(RecordOwnerTest, NestedTargetsEachCloseTheirOwnFlow) {
  auto server = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  ASSERT_OK_AND_ASSIGN(TestCgroup * inner, cg_->CreateChild("inner"));
  AddTarget("outer");
  CtlOk(
      {"allow", absl::StrCat(port, "/tcp"), "127.0.0.2", "--target", "outer"});
  AddTarget("inner", inner);
  // Rule 1 of inner is for another port: its flow is rule 2's.
  CtlOk({"allow", "9/tcp", "127.0.0.9", "--target", "inner"});
  CtlOk(
      {"allow", absl::StrCat(port, "/tcp"), "127.0.0.2", "--target", "inner"});
  ASSERT_EQ(InCgroup([port] { return TcpConnect("127.0.0.2", port); }, inner),
            0);
  AwaitFlowsClosed("inner", 1);
  AwaitFlowsClosed("outer", 1);
  for (const auto& [target, rule] :
       std::vector<std::pair<std::string, int>>{{"outer", 1}, {"inner", 2}}) {
    SCOPED_TRACE(target);
    std::vector<nlohmann::json> records = Records({"--target", target}, 2);
    ASSERT_EQ(OfKind(records, "established").size(), 1u)
        << nlohmann::json(records).dump(2);
    ASSERT_EQ(OfKind(records, "closed").size(), 1u)
        << nlohmann::json(records).dump(2);
    for (const auto& r : records) {
      EXPECT_EQ(r["target"], target) << r.dump();
      EXPECT_EQ(r["rule_id"], rule) << r.dump();
      EXPECT_EQ(r["l4"]["destination_port"], port) << r.dump();
    }
  }
}

// A connection opened under one target and closed after that target was
// removed and another made on the same cgroup: the new target's records say
// nothing of a flow it never saw established.
TEST_F(RecordOwnerTest, ATargetMadeAgainOnTheCgroupGetsNoneOfTheOldFlows) {
  auto server = TcpListener::Create("127.0.0.2", 0, TcpListener::Mode::kEcho);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "127.0.0.2"});
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  // The child connects, then holds the connection until told (or 10 s).
  int held = -1;
  std::thread holder([&] {
    held = InCgroup([port, &go] {
      close(go[1]);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to = MakeSockaddrIn("127.0.0.2", port);
      if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
        return errno;
      }
      pollfd p{go[0], POLLIN, 0};
      poll(&p, 1, 10'000);
      close(fd);
      return 0;
    });
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Counters("web")["flows_opened"].get<uint64_t>() < 1 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Counters("web")["flows_opened"], 1);
  const uint32_t old_id = TargetId("web");
  CtlOk({"target", "remove", "web"});
  AddTarget("web2");
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "127.0.0.2", "--target", "web2"});
  EXPECT_NE(TargetId("web2"), old_id);
  close(go[1]);  // the connection closes now, under web2's programs
  holder.join();
  close(go[0]);
  ASSERT_EQ(held, 0);
  // The close is counted under web2, whose program saw it: a flow without
  // records keeps no state that could say whose it was (docs/events.md).
  // Its record, which has that state, is not web2's.
  AwaitFlowsClosed("web2", 1);
  // And one of its own, which it does record, both ends.
  ASSERT_EQ(InCgroup([port] { return TcpConnect("127.0.0.2", port); }), 0);
  AwaitFlowsClosed("web2", 2);
  std::vector<nlohmann::json> records = Records({"--target", "web2"}, 2);
  EXPECT_EQ(OfKind(records, "established").size(), 1u)
      << nlohmann::json(records).dump(2);
  EXPECT_EQ(OfKind(records, "closed").size(), 1u)
      << nlohmann::json(records).dump(2);
}

// Denials held back by the rate limit are summed up by the sweep after
// their window. A target removed with such a count pending, and another
// added at once: the summary never names the new one.
TEST_F(RecordOwnerTest, HeldBackCountsOfARemovedTargetNeverNameTheNextOne) {
  ASSERT_OK_AND_ASSIGN(TestCgroup * other, cg_->CreateChild("other"));
  AddTarget("api");
  const uint32_t old_id = TargetId("api");
  ASSERT_EQ(InCgroup([] {
              for (int i = 0; i < 9; ++i) {
                if (int rc = TcpConnect("127.0.0.9", 99); rc != EPERM) {
                  return rc == 0 ? -2 : rc;
                }
              }
              return 0;
            }),
            0);
  CtlOk({"target", "remove", "api"});
  AddTarget("db", other);
  EXPECT_NE(TargetId("db"), old_id);
  // The sweep runs about every 0.5 s, once the 1 s window has passed.
  absl::SleepFor(absl::Seconds(3));
  CommandResult r =
      Ctl({"events", "--target", "db", "--last", "10000", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
  EXPECT_EQ(Counters("db")["events_suppressed"], 0);
}

}  // namespace
}  // namespace egress::testing
