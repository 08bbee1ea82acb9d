// The control socket: a client that connects and sends nothing (or half a
// request) does not hold up other clients or the event loop.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/policy_text.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

class ControlTest : public EgressdTest {
 protected:
  UniqueFd Connect() {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(
        connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }
  // What the daemon wrote to `fd` so far (waits at most `ms`).
  std::string ReadSome(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return "";
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    return n > 0 ? std::string(buf, n) : "";
  }
  // Target "web" with 20,000 scattered /32s (odd last octets: no two join):
  // its `list` answer, and the request that made it, are far larger than a
  // socket's buffer.
  void AddWebWithManyRules() {
    AddTarget("web");
    std::vector<std::string> allow = {"allow", "443/tcp"};
    for (int i = 0; i < 20000; ++i) {
      allow.push_back(
          absl::StrCat("10.", i % 200, ".", i / 200, ".", 2 * (i % 100) + 1));
    }
    CtlOk(allow);
  }
  // A policy file for target web (the test cgroup): `port` to 127.0.0.1
  // and 20,000 scattered /32s on 443 whose second octet is `filler`, so
  // that two files differ in every rule. Applying one over the other takes
  // a while, and its answer (every rule added and removed) is megabytes.
  std::string WriteLargePolicy(const std::string& name, int port, int filler) {
    std::string rules = absl::StrCat(
        "  - to: [{ipBlock: {cidr: 127.0.0.1/32}}]\n"
        "    ports: [{port: ",
        port, ", protocol: TCP}]\n");
    for (int i = 0; i < 20000; ++i) {
      absl::StrAppend(&rules, "  - to: [{ipBlock: {cidr: 10.", filler, ".",
                      i / 100, ".", 2 * (i % 100) + 1,
                      "/32}}]\n    ports: [{port: 443, protocol: TCP}]\n");
    }
    const std::string path =
        absl::StrCat(state_dir_.substr(0, state_dir_.rfind('/')), "/", name);
    std::ofstream(path) << PolicyHead("web", cg_->relative_path()) << rules;
    return path;
  }
};

TEST_F(ControlTest, SilentClientsDoNotHoldUpOthers) {
  // Three clients that connect and say nothing, one that sends half a line.
  UniqueFd silent[3] = {Connect(), Connect(), Connect()};
  UniqueFd half = Connect();
  ASSERT_EQ(write(half.get(), "{\"cmd\":", 7), 7);
  // Others are served meanwhile: before any silent client gets its answer.
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  EXPECT_TRUE(absl::StrContains(CtlOk({"status"}), "web"));
  for (UniqueFd& fd : silent) EXPECT_EQ(ReadSome(fd.get(), 0), "");
  // The half request completes late and is served.
  ASSERT_EQ(write(half.get(), "\"ping\"}\n", 8), 8);
  EXPECT_TRUE(absl::StrContains(ReadSome(half.get(), 5000), "\"pong\":true"));
  // The silent ones are told off after their 5 s (bounded wait).
  EXPECT_TRUE(absl::StrContains(ReadSome(silent[0].get(), 10000),
                                "no complete request"));
}

// Requests of the wrong shape are answered with an error naming the member,
// egressd keeps serving, and a rejected apply creates nothing.
TEST_F(ControlTest, MalformedRequestsAreAnsweredNotFatal) {
  const char* requests[] = {
      R"({"cmd":1})",
      R"({"cmd":"list","target":5})",
      R"({"cmd":"events","last":"x"})",
      R"({"cmd":"mode","mode":["audit"]})",
      R"({"cmd":"rule_add","rule":{"id":"x"}})",
      R"({"cmd":"apply","policies":[{"name":"new","source_kind":"cgroup",)"
      R"("source":"/egress-none","logging":"bogus","rules":[]}]})",
      R"([])",
      R"("text")",
  };
  for (const char* text : requests) {
    UniqueFd fd = Connect();
    std::string line = std::string(text) + "\n";
    ASSERT_EQ(write(fd.get(), line.data(), line.size()),
              static_cast<ssize_t>(line.size()));
    std::string reply = ReadSome(fd.get(), 5000);
    EXPECT_TRUE(absl::StrContains(reply, "\"ok\":false")) << text << reply;
  }
  EXPECT_TRUE(absl::StrContains(CtlOk({"target", "list"}), "NAME"));
  EXPECT_FALSE(absl::StrContains(CtlOk({"target", "list"}), "new"));
}

// A client that asks for a large answer and never reads it holds only its
// own connection: requests and changes of others are answered meanwhile
// (they waited up to 10 s before), and the answer arrives whole when the
// client reads at last.
TEST_F(ControlTest, AClientThatDoesNotReadItsAnswerHoldsOnlyItself) {
  AddWebWithManyRules();
  UniqueFd hog = Connect();
  const std::string list = "{\"cmd\":\"list\"}\n";
  ASSERT_EQ(write(hog.get(), list.data(), list.size()),
            static_cast<ssize_t>(list.size()));
  absl::SleepFor(absl::Milliseconds(300));  // egressd is writing to it now
  // Answered while the silent client still holds its answer: had egressd
  // waited for it, it would have dropped it after its 10 s write bound, and
  // the whole answer below would never arrive.
  EXPECT_TRUE(absl::StrContains(CtlOk({"status"}), "web"));
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  // The whole answer, intact, once the client reads.
  std::string answer;
  for (int i = 0; i < 2000 && !absl::EndsWith(answer, "\n"); ++i) {
    std::string more = ReadSome(hog.get(), 5000);
    if (more.empty()) break;
    answer += more;
  }
  nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << answer.size() << " bytes";
  EXPECT_GT(answer.size(), 400000u);
  EXPECT_EQ(j["ok"], true);
}

// A request of more than 256 KiB is parsed on the worker, not on the loop
// (a fleet's policies take seconds to parse, and `status` waited for that):
// a large change is applied, a large malformed line is answered, a read
// that large is refused, and egressd serves on.
TEST_F(ControlTest, LargeRequestsAreParsedOffTheLoop) {
  AddWebWithManyRules();
  EXPECT_TRUE(absl::StrContains(CtlOk({"list"}), "10.199.99.199"));
  auto send = [&](const std::string& line) {
    UniqueFd fd = Connect();
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n = write(fd.get(), line.data() + off, line.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    EXPECT_EQ(off, line.size());
    return ReadSome(fd.get(), 10000);
  };
  const std::string big(300 * 1024, 'x');
  std::string reply = send(big + "\n");
  EXPECT_TRUE(absl::StrContains(reply, "\"ok\":false")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "not a JSON object")) << reply;
  reply = send(absl::StrCat(R"({"cmd":"list","target":")", big, "\"}\n"));
  EXPECT_TRUE(absl::StrContains(reply, "\"ok\":false")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "only a change may be larger")) << reply;
  EXPECT_TRUE(absl::StrContains(CtlOk({"status"}), "web"));
}

// Idle connections (a monitoring script that connects and waits, a burst of
// clients) do not make egressd "busy" for the next one until 256 of them
// have not finished their requests.
TEST_F(ControlTest, ManyIdleConnectionsDoNotMakeItBusy) {
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(Connect());
  absl::SleepFor(absl::Milliseconds(200));  // accepted, all pending
  EXPECT_TRUE(absl::StrContains(CtlOk({"target", "list"}), "NAME"));
  for (UniqueFd& fd : idle) EXPECT_EQ(ReadSome(fd.get(), 0), "");
}

// egressd stopping (SIGTERM) writes the answers it owes before it exits: a
// client whose large answer has started arrives gets all of it, not the
// head of it (egressd wrote what the socket took and exited).
TEST_F(ControlTest, StoppingFinishesTheAnswersItOwes) {
  AddWebWithManyRules();
  UniqueFd slow = Connect();
  const std::string list = "{\"cmd\":\"list\"}\n";
  ASSERT_EQ(write(slow.get(), list.data(), list.size()),
            static_cast<ssize_t>(list.size()));
  // The answer has started (far larger than the socket's buffer): stop
  // egressd before the client reads any of it.
  pollfd p{slow.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  const pid_t pid = daemon_pid_;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  absl::SleepFor(absl::Milliseconds(300));
  std::string answer;
  for (int i = 0; i < 2000 && !absl::EndsWith(answer, "\n"); ++i) {
    std::string more = ReadSome(slow.get(), 5000);
    if (more.empty()) break;
    answer += more;
  }
  StopDaemon(SIGTERM);  // reaps it (it has exited by now)
  nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << answer.size() << " bytes";
  EXPECT_EQ(j["ok"], true);
  EXPECT_TRUE(absl::StrContains(answer, "10.199.99.199"));
}

// SIGTERM while an `apply` runs: egressctl either gets the whole answer
// (exit 0, and the new policy is what a restarted egressd enforces) or says
// that egressd went away before answering and that the change may or may
// not have been applied (exit 1). Never exit 2 ("bad input, nothing was
// changed"): the change may well have been applied and saved.
TEST_F(ControlTest, SigtermDuringApplyNeverLooksLikeBadInput) {
  const std::string old_file = WriteLargePolicy("old.yaml", 8080, 1);
  const std::string new_file = WriteLargePolicy("new.yaml", 9090, 2);
  const absl::Time start = absl::Now();
  CtlOk({"apply", "-f", old_file});
  const absl::Duration took = absl::Now() - start;

  CommandResult apply;
  std::thread applier([&] { apply = Ctl({"apply", "-f", new_file}); });
  absl::Cleanup join = [&] {
    if (applier.joinable()) applier.join();
  };
  // Half-way through an apply as long as the first.
  absl::SleepFor(took / 2);
  StopDaemon(SIGTERM);
  applier.join();

  EXPECT_NE(apply.exit_code, 2) << apply.output;
  EXPECT_FALSE(absl::StrContains(apply.output, "not a JSON object"))
      << apply.output.substr(0, 2000);
  if (apply.exit_code != 0) {
    EXPECT_EQ(apply.exit_code, 1) << apply.output;
    EXPECT_TRUE(absl::StrContains(
        apply.output, "egressd stopped or closed the connection before"))
        << apply.output.substr(0, 2000);
    // Cut off in its answer, or while it still sent the request (egressd
    // closed first: then it was not applied).
    EXPECT_TRUE(
        absl::StrContains(apply.output, "may or may not have been applied") ||
        absl::StrContains(apply.output, "before taking the whole request"))
        << apply.output.substr(0, 2000);
  }

  StartDaemon();
  const std::string rules = CtlOk({"list", "--target", "web"});
  const bool is_new = absl::StrContains(rules, "9090/tcp");
  const bool is_old = absl::StrContains(rules, "8080/tcp");
  EXPECT_NE(is_new, is_old) << rules.substr(0, 2000);
  // What the client was told holds: an answered apply is in force, a
  // request egressd never took whole is not.
  if (apply.exit_code == 0) {
    EXPECT_TRUE(is_new) << rules.substr(0, 2000);
  }
  if (absl::StrContains(apply.output, "before taking the whole request")) {
    EXPECT_TRUE(is_old) << rules.substr(0, 2000);
  }
}

}  // namespace
}  // namespace egress::testing
