// Unix-socket rules through the connect_unix and sendmsg_unix hooks (Linux
// 6.7+): real unix servers (socket files in a temporary directory, abstract
// names), real connects and sends from a process in the test cgroup, the
// records and counters egressd reports. A refused operation fails with
// EPERM; an allowed one reaches the server (0).
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/unix_sockets.h"
#include "userspace/kernel/unix_hooks.h"

namespace egress::testing {
namespace {

#define EXPECT_REFUSED(expr) \
  EXPECT_EQ((expr), EPERM) << #expr << " should be refused with EPERM"
#define EXPECT_REACHES(expr) \
  EXPECT_EQ((expr), 0) << #expr << " -> " << strerror(expr)

// Two servers of each kind, one to deny and one to allow: a stream and a
// datagram socket file, and the same as abstract names.
class UnixTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    // CI runs on kernels with the hooks: a missing hook is a failure here.
    ASSERT_TRUE(KernelHasUnixHooks()) << UnixHooksWarning();
    auto dir = TempSocketDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    const std::string tag = absl::StrCat("@egress-test-", getpid(), "-");
    for (const char* which : {"deny", "ok"}) {
      Add(SOCK_STREAM, absl::StrCat(dir_->path(), "/", which, "-stream.sock"));
      Add(SOCK_DGRAM, absl::StrCat(dir_->path(), "/", which, "-dgram.sock"));
      Add(SOCK_STREAM, absl::StrCat(tag, which, "-stream"));
      Add(SOCK_DGRAM, absl::StrCat(tag, which, "-dgram"));
    }
  }
  void TearDown() override {
    servers_.clear();
    dir_.reset();
    EgressdTest::TearDown();
  }

  void Add(int type, const std::string& text) {
    auto s = UnixServer::Create(type, text);
    ASSERT_TRUE(s.ok()) << s.status();
    servers_.push_back(*std::move(s));
    (absl::StrContains(text, "deny-") ? deny_ : ok_).push_back(text);
  }
  // deny_/ok_ hold, in order: stream path, dgram path, stream abstract,
  // dgram abstract.
  const std::string& Deny(int i) const { return deny_[i]; }
  const std::string& Ok(int i) const { return ok_[i]; }

  // Every way to reach the four addresses of `a` (0: stream path, 1: dgram
  // path, 2: stream abstract, 3: dgram abstract), from the test cgroup:
  // the errno of each.
  std::vector<int> Reach(const std::vector<std::string>& a) {
    std::vector<int> out;
    for (int i : {0, 2}) {
      out.push_back(InCgroup([&] { return UnixConnect(SOCK_STREAM, a[i]); }));
      // Without the NUL in the length, as some runtimes pass a path.
      out.push_back(
          InCgroup([&] { return UnixConnect(SOCK_STREAM, a[i], false); }));
    }
    for (int i : {1, 3}) {
      out.push_back(InCgroup([&] { return UnixConnect(SOCK_DGRAM, a[i]); }));
      out.push_back(InCgroup([&] { return UnixSendto(a[i]); }));
      out.push_back(InCgroup([&] { return UnixSendto(a[i], false); }));
      out.push_back(InCgroup([&] { return UnixSendmsg(a[i]); }));
    }
    return out;
  }

  // Records of the target (JSON Lines of `egressctl events`), once at least
  // `n` are there or 5 s passed.
  std::vector<nlohmann::json> Records(size_t n) {
    return EgressdTest::Records({"--target", "web"}, n);
  }

  std::unique_ptr<TempSocketDir> dir_;
  std::vector<std::unique_ptr<UnixServer>> servers_;
  std::vector<std::string> deny_, ok_;
};

TEST_F(UnixTest, DenyRulesRefuseListedPathsOnly) {
  AddTarget("web");
  CtlOk({"deny", "unix", Deny(0), Deny(1), Deny(2), Deny(3)});
  for (int rc : Reach(deny_)) EXPECT_EQ(rc, EPERM);
  // Only denies: every other address passes.
  for (int rc : Reach(ok_)) EXPECT_EQ(rc, 0) << strerror(rc);
  // Outside the target nothing changes.
  EXPECT_REACHES(UnixConnect(SOCK_STREAM, Deny(0)));
  EXPECT_REACHES(UnixSendto(Deny(3)));
  // Deleting the rule lets the paths through again.
  CtlOk({"delete", "deny", "unix", Deny(0), Deny(1), Deny(2), Deny(3)});
  for (int rc : Reach(deny_)) EXPECT_EQ(rc, 0) << strerror(rc);
}

TEST_F(UnixTest, AllowRulesMakeAnAllowList) {
  AddTarget("web");
  CtlOk({"allow", "unix", Ok(0), Ok(1), Ok(2), Ok(3)});
  for (int rc : Reach(ok_)) EXPECT_EQ(rc, 0) << strerror(rc);
  for (int rc : Reach(deny_)) EXPECT_EQ(rc, EPERM);
  // The allowed socket under another name is another string: a relative
  // path from its directory is not on the list.
  const std::string dir = dir_->path();
  EXPECT_REFUSED(InCgroup([&] {
    if (chdir(dir.c_str()) != 0) return errno;
    return UnixConnect(SOCK_STREAM, "ok-stream.sock");
  }));
  // Deny beats allow on the same address.
  CtlOk({"deny", "unix", Ok(0)});
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(0)); }));
  EXPECT_REACHES(InCgroup([&] { return UnixSendto(Ok(1)); }));
}

TEST_F(UnixTest, SeqpacketConnectsAreDecidedToo) {
  const std::string path = dir_->path() + "/seq.sock";
  auto seq = UnixServer::Create(SOCK_SEQPACKET, path);
  ASSERT_TRUE(seq.ok()) << seq.status();
  AddTarget("web");
  CtlOk({"deny", "unix", path});
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_SEQPACKET, path); }));
}

TEST_F(UnixTest, TargetWithoutUnixRulesLetsUnixThroughUncounted) {
  AddTarget("web");
  // Inet is default deny with no rules; unix is not looked at.
  CtlOk({"logging", "all", "--target", "web"});
  for (int rc : Reach(deny_)) EXPECT_EQ(rc, 0) << strerror(rc);
  nlohmann::json c = Counters("web");
  EXPECT_EQ(c["allowed"], 0) << c.dump();
  EXPECT_EQ(c["denied"], 0) << c.dump();
  CommandResult r =
      Ctl({"events", "--target", "web", "--last", "1000", "-o", "json"});
  EXPECT_FALSE(absl::StrContains(r.output, "_unix")) << r.output;
}

TEST_F(UnixTest, RecordsNameThePathAndCountersCount) {
  AddTarget("web");
  CtlOk({"allow", "unix", Ok(0)});
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_STREAM, Deny(0)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixSendto(Deny(3)); }));
  EXPECT_REACHES(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(0)); }));
  std::vector<nlohmann::json> records = Records(2);
  ASSERT_EQ(records.size(), 2u);
  const nlohmann::json& c = records[0];
  EXPECT_EQ(c["event"], "connect");
  EXPECT_EQ(c["hook"], "connect_unix");
  EXPECT_EQ(c["verdict"], "DENIED");
  EXPECT_EQ(c["reason"], "NO_MATCHING_RULE");
  EXPECT_EQ(c["unix"]["path"], Deny(0));
  EXPECT_EQ(c["unix"]["abstract"], false);
  EXPECT_EQ(c["unix"]["type"], "stream");
  EXPECT_EQ(c["hint"], "egressctl allow unix " + Deny(0) + " --target web");
  EXPECT_TRUE(absl::StrContains(c["message"].get<std::string>(),
                                "-> unix:" + Deny(0) + " stream DENIED"))
      << c["message"];
  const nlohmann::json& s = records[1];
  EXPECT_EQ(s["event"], "sendmsg");
  EXPECT_EQ(s["hook"], "sendmsg_unix");
  EXPECT_EQ(s["unix"]["path"], Deny(3));
  EXPECT_EQ(s["unix"]["abstract"], true);
  EXPECT_EQ(s["unix"]["type"], "dgram");
  nlohmann::json counters = Counters("web");
  EXPECT_EQ(counters["denied"], 2) << counters.dump();
  EXPECT_EQ(counters["allowed"], 1) << counters.dump();
}

TEST_F(UnixTest, AuditModeRecordsWithoutRefusing) {
  AddTarget("web", nullptr, "audit");
  CtlOk({"deny", "unix", Deny(0)});
  CtlOk({"allow", "unix", Ok(1)});
  EXPECT_REACHES(InCgroup([&] { return UnixConnect(SOCK_STREAM, Deny(0)); }));
  EXPECT_REACHES(InCgroup([&] { return UnixSendto(Deny(3)); }));
  std::vector<nlohmann::json> records = Records(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["verdict"], "AUDIT");
  EXPECT_EQ(records[0]["reason"], "MATCHED_DENY");
  EXPECT_EQ(records[0]["unix"]["path"], Deny(0));
  EXPECT_EQ(records[1]["verdict"], "AUDIT");
  EXPECT_EQ(records[1]["reason"], "NO_MATCHING_RULE");
  EXPECT_EQ(records[1]["unix"]["path"], Deny(3));
  EXPECT_EQ(Counters("web")["audited"], 2);
  // Enforce turns the same attempts into refusals.
  CtlOk({"mode", "enforce", "--target", "web"});
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_STREAM, Deny(0)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixSendto(Deny(3)); }));
}

TEST_F(UnixTest, PolicyFileUnixListsAreEnforced) {
  const std::string file =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/unix.yaml";
  // JSON is YAML: the policy written as one flow document.
  const nlohmann::json policy = {
      {"apiVersion", "egress.dev/v1alpha1"},
      {"kind", "EgressPolicy"},
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"target", {{"cgroupPath", cg_->relative_path()}}},
        {"egress", nlohmann::json::array(
                       {{{"name", "fpm"},
                         {"unix", nlohmann::json::array({Ok(0), Ok(3)})}}})},
        {"egressDeny", nlohmann::json::array(
                           {{{"name", "docker"},
                             {"unix", nlohmann::json::array({Deny(0)})}}})}}}};
  std::ofstream(file) << policy.dump(2);
  CtlOk({"apply", "-f", file});
  EXPECT_REACHES(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(0)); }));
  EXPECT_REACHES(InCgroup([&] { return UnixSendto(Ok(3)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_STREAM, Deny(0)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixSendto(Ok(1)); }));
  std::string list = CtlOk({"list"});
  EXPECT_TRUE(absl::StrContains(list, "DENY unix " + Deny(0))) << list;
  unlink(file.c_str());
}

TEST_F(UnixTest, AuditModeLearnsUnixSocketsAndSuggestsAnAllowList) {
  // Audit, no unix rules: the unix sockets used are recorded and learned.
  AddTarget("web", nullptr, "audit");
  for (int i = 0; i < 2; ++i) {
    EXPECT_REACHES(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(0)); }));
  }
  EXPECT_REACHES(InCgroup([&] { return UnixSendto(Ok(3)); }));
  std::string yaml;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    yaml = CtlOk({"suggest", "--target", "web"});
    if (absl::StrContains(yaml, Ok(3))) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(absl::StrContains(yaml, "unix:")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, Ok(0) + ": 2 attempts")) << yaml;
  const std::string file =
      state_dir_.substr(0, state_dir_.rfind('/')) + "/suggested.yaml";
  std::ofstream(file) << yaml;
  CtlOk({"apply", "-f", file});
  // Enforced: what was seen works, every other unix address is refused.
  EXPECT_REACHES(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(0)); }));
  EXPECT_REACHES(InCgroup([&] { return UnixSendto(Ok(3)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixConnect(SOCK_STREAM, Ok(2)); }));
  EXPECT_REFUSED(InCgroup([&] { return UnixSendto(Deny(1)); }));
}

}  // namespace
}  // namespace egress::testing
