// Learn and propose: in audit mode egressd aggregates what a target
// initiated; `egressctl suggest` turns it into a policy file that, applied,
// allows exactly that. `egressctl export` writes the enforced policy as files
// that apply back to the same state.
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/listeners.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/unique_fd.h"
#include "userspace/policy/policy_file.h"

namespace egress::testing {
namespace {

class LearnTest : public EgressdTest {
 protected:
  std::string TmpFile(const std::string& name) {
    return state_dir_.substr(0, state_dir_.rfind('/')) + "/" + name;
  }
  // The workload the target runs while it is learned.
  void Workload() {
    for (int i = 0; i < 3; ++i) {
      EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    }
    EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40003); }));
  }
  // The text of `path` ("" when it cannot be read).
  static std::string ReadText(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Polls (bounded) until suggest covers `n` protocol/port combinations
  // (records are drained every 50 ms).
  std::string SuggestWhenSeen(const std::vector<std::string>& args,
                              const std::string& needle) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::string out;
    while (absl::Now() < deadline) {
      out = CtlOk(args);
      if (absl::StrContains(out, needle)) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return out;
  }
};

// A target learned in audit mode that already has rules (re-learning an
// enforced one): what the rules allow is learned too, so the suggestion
// keeps a UDP dependency that at `logging denied` left no record before.
TEST_F(LearnTest, WhatTheCurrentRulesAllowIsLearnedInAuditMode) {
  AddTarget("web", nullptr, "audit");
  CtlOk({"allow", "40053/udp", "127.0.0.9"});
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.9", 40053); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  const std::string yaml =
      SuggestWhenSeen({"suggest", "--target", "web"}, "127.0.0.2/32");
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: 127.0.0.9/32")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "udp-40053")) << yaml;
  // Enforce mode keeps `denied` meaning what it says.
  CtlOk({"mode", "enforce"});
  const uint64_t before = Records({"--target", "web"}, 0).size();
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.9", 40053); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.8", 40053); }));
  const std::vector<nlohmann::json> after =
      Records({"--target", "web"}, before + 1);
  ASSERT_GT(after.size(), before);
  for (size_t i = before; i < after.size(); ++i) {
    EXPECT_NE(after[i]["verdict"], "ALLOWED") << after[i];
  }
  EXPECT_EQ(after.back()["verdict"], "DENIED") << after.back();
}

TEST_F(LearnTest, SuggestAllowsExactlyWhatWasSeen) {
  AddTarget("web", nullptr, "audit");
  Workload();
  std::string yaml = SuggestWhenSeen({"suggest", "--target", "web"}, "::1");
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: 127.0.0.2/32")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: 127.0.0.53/32")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: \"::1/128\"")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "3 attempts")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "port: domain")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "mode: enforce")) << yaml;

  std::string file = TmpFile("suggested.yaml");
  std::ofstream(file) << yaml;
  CtlOk({"apply", "-f", file});
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["mode"], "enforce");
  // Exactly what was seen...
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40003); }));
  // ...and nothing else.
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.3", 40001); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.54", 53); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("::1", 40001); }));
}

// A UDP connect() sends nothing: glibc's getaddrinfo() connects a UDP socket
// to each address of a name, port included, only to sort them by the source
// address each would get. Learning takes a UDP connect as a destination once
// a datagram goes there, and never for the connect alone.
TEST_F(LearnTest, UdpConnectsAreLearnedOnlyWhenADatagramFollows) {
  AddTarget("web", nullptr, "audit");
  // Connected, nothing sent: IPv4, IPv4-mapped from an IPv6 socket, IPv6.
  EXPECT_EQ(InCgroup([] { return UdpConnectNoSend("127.0.0.61", 40061); }), 0);
  EXPECT_EQ(
      InCgroup([] { return UdpConnectNoSend("::ffff:127.0.0.62", 40062); }), 0);
  EXPECT_EQ(InCgroup([] { return UdpConnectNoSend("::1", 40063); }), 0);
  // Connected elsewhere first: only where the datagram went counts.
  EXPECT_EQ(InCgroup([] {
              return UdpReconnectThenSend("127.0.0.64", 40064, "127.0.0.65",
                                          40065);
            }),
            0);
  // Connected and sent: send(), from an IPv6 socket to an IPv4-mapped
  // address, over IPv6, and sendto() of the connected address.
  EXPECT_EQ(InCgroup([] { return UdpConnectThenSend("127.0.0.66", 40066); }),
            0);
  EXPECT_EQ(
      InCgroup([] { return UdpConnectThenSend("::ffff:127.0.0.67", 40067); }),
      0);
  EXPECT_EQ(InCgroup([] { return UdpConnectThenSend("::1", 40068); }), 0);
  EXPECT_EQ(
      InCgroup([] { return UdpConnectThenSendtoSame("127.0.0.69", 40069); }),
      0);
  // Records are drained in the order they were made: once the last one is
  // learned, every one before it is.
  const std::string yaml =
      SuggestWhenSeen({"suggest", "--target", "web"}, "127.0.0.69/32");
  for (const char* sent : {"127.0.0.65/32", "127.0.0.66/32", "127.0.0.67/32",
                           "udp-40068", "127.0.0.69/32"}) {
    EXPECT_TRUE(absl::StrContains(yaml, sent)) << sent << "\n" << yaml;
  }
  for (const char* unsent :
       {"127.0.0.61", "127.0.0.62", "40063", "127.0.0.64", "40064"}) {
    EXPECT_FALSE(absl::StrContains(yaml, unsent)) << unsent << "\n" << yaml;
  }
  // The record is the connect's, made by the process that connected.
  const std::vector<nlohmann::json> records = Records({"--target", "web"}, 1);
  bool found = false;
  for (const nlohmann::json& r : records) {
    if (!r.contains("l4") || r["l4"]["destination"] != "127.0.0.66") continue;
    found = true;
    EXPECT_EQ(r["hook"], "connect4") << r;
    EXPECT_EQ(r["verdict"], "AUDIT") << r;
    EXPECT_GT(r["process"]["pid"].get<int64_t>(), 0) << r;
  }
  EXPECT_TRUE(found) << "no record of 127.0.0.66";
}

// The held record goes out with a datagram of the socket while it is still
// connected there (skb_egress looks only at connected sockets' storage). A
// socket that disconnects (connect() to AF_UNSPEC) and then sendto()s the
// same address is recorded by sendmsg4, as any sendto(), not a second time
// as the connect.
TEST_F(LearnTest, ASendtoAfterADisconnectIsRecordedAsASendtoOnly) {
  AddTarget("web", nullptr, "audit");
  EXPECT_EQ(InCgroup([] {
              UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
              if (!fd) return errno;
              sockaddr_in to{};
              to.sin_family = AF_INET;
              to.sin_port = htons(40075);
              to.sin_addr.s_addr = htonl(0x7f00004b);  // 127.0.0.75
              if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to),
                          sizeof(to)) != 0) {
                return errno;
              }
              sockaddr unspec{};
              unspec.sa_family = AF_UNSPEC;
              if (connect(fd.get(), &unspec, sizeof(unspec)) != 0) return errno;
              const char byte = 'x';
              if (sendto(fd.get(), &byte, 1, 0,
                         reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 1) {
                return errno;
              }
              return 0;
            }),
            0);
  // Records are drained in order: once the marker's is read, every record
  // of the socket above is.
  EXPECT_EQ(InCgroup([] { return UdpConnectThenSend("127.0.0.76", 40076); }),
            0);
  std::vector<nlohmann::json> records;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool marker = false;
  while (!marker && absl::Now() < deadline) {
    records = Records({"--target", "web"}, 1);
    for (const nlohmann::json& r : records) {
      if (r.contains("l4") && r["l4"]["destination"] == "127.0.0.76") {
        marker = true;
      }
    }
    if (!marker) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(marker) << "no record of the marker 127.0.0.76";
  int sendto_records = 0;
  for (const nlohmann::json& r : records) {
    if (!r.contains("l4") || r["l4"]["destination"] != "127.0.0.75") continue;
    EXPECT_EQ(r["hook"], "sendmsg4") << r;
    if (r["hook"] == "sendmsg4") ++sendto_records;
  }
  EXPECT_EQ(sendto_records, 1);
}

// Two audit targets, one nested in the other: each holds the connect's
// record in a slot of its own, and each learns the datagram's destination.
TEST_F(LearnTest, NestedAuditTargetsBothLearnAConnectedDatagram) {
  AddTarget("outer", nullptr, "audit");
  auto inner = cg_->CreateChild("inner");
  ASSERT_TRUE(inner.ok()) << inner.status();
  AddTarget("inner", *inner, "audit");
  EXPECT_EQ(
      InCgroup([] { return UdpConnectNoSend("127.0.0.71", 40071); }, *inner),
      0);
  EXPECT_EQ(
      InCgroup([] { return UdpConnectThenSend("127.0.0.72", 40072); }, *inner),
      0);
  for (const char* target : {"inner", "outer"}) {
    const std::string yaml =
        SuggestWhenSeen({"suggest", "--target", target}, "127.0.0.72/32");
    EXPECT_TRUE(absl::StrContains(yaml, "127.0.0.72/32")) << target << yaml;
    EXPECT_FALSE(absl::StrContains(yaml, "127.0.0.71")) << target << yaml;
  }
  CtlOk({"target", "remove", "inner"});
}

TEST_F(LearnTest, RawSocketsSeenInAuditAreAllowedBySuggestion) {
  AddTarget("web", nullptr, "audit");
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET); }), 0);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  std::string yaml =
      SuggestWhenSeen({"suggest", "--target", "web"}, "raw: true");
  EXPECT_TRUE(absl::StrContains(yaml, "raw: true")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "not checked per destination")) << yaml;

  std::string file = TmpFile("suggested.yaml");
  std::ofstream(file) << yaml;
  CtlOk({"apply", "-f", file});
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["mode"], "enforce");
  // The application keeps working: its raw socket is allowed.
  EXPECT_EQ(InCgroup([] { return RawSocket(AF_INET); }), 0);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.3", 40001); }));
}

TEST_F(LearnTest, EachConnectionCountsOnceAndAllowedFlowsAreLearned) {
  auto listener = TcpListener::Create("127.0.0.4");
  ASSERT_TRUE(listener.ok()) << listener.status();
  const uint16_t port = (*listener)->port();
  const std::string needle = absl::StrCat("127.0.0.4/32");
  // Audit: a connect record and an (unexplained) flow per connection.
  AddTarget("web", nullptr, "audit");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(InCgroup([port] { return TcpConnect("127.0.0.4", port); }), 0);
  }
  ASSERT_TRUE((*listener)->WaitForAccepted(3));
  // Records are drained every 50 ms: wait for the count, then make sure a
  // moment later it has not grown (each connection counts once).
  std::string yaml =
      SuggestWhenSeen({"suggest", "--target", "web"}, "127.0.0.4: 3 attempts");
  absl::SleepFor(absl::Milliseconds(300));
  yaml = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(yaml, "127.0.0.4: 3 attempts")) << yaml;

  // Enforce with a rule and allow records off: the flows are the only
  // evidence, and they are learned.
  CtlOk({"target", "remove", "web"});
  AddTarget("web");
  CtlOk({"allow", absl::StrCat(port, "/tcp"), "127.0.0.4"});
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(InCgroup([port] { return TcpConnect("127.0.0.4", port); }), 0);
  }
  yaml =
      SuggestWhenSeen({"suggest", "--target", "web"}, "127.0.0.4: 2 attempts");
  absl::SleepFor(absl::Milliseconds(300));
  yaml = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(yaml, needle)) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "127.0.0.4: 2 attempts")) << yaml;
}

TEST_F(LearnTest, GroupingAndSince) {
  AddTarget("web", nullptr, "audit");
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.3", 40001); }));
  std::string yaml = SuggestWhenSeen(
      {"suggest", "--target", "web", "--group", "/24"}, "127.0.0.0/24");
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: 127.0.0.0/24")) << yaml;
  EXPECT_FALSE(absl::StrContains(yaml, "127.0.0.2/32")) << yaml;

  // Nothing in the last second after a pause: a policy that denies all.
  absl::SleepFor(absl::Milliseconds(2100));
  yaml = CtlOk({"suggest", "--target", "web", "--since", "1s"});
  EXPECT_FALSE(absl::StrContains(yaml, "127.0.0")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "kind: EgressPolicy")) << yaml;

  CommandResult bad = Ctl({"suggest", "--target", "web", "--group", "24"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(bad.output, "--group wants /N")) << bad.output;
}

TEST_F(LearnTest, LearnedTrafficSurvivesRestart) {
  AddTarget("web", nullptr, "audit");
  Workload();
  SuggestWhenSeen({"suggest", "--target", "web"}, "::1");
  StopDaemon(SIGTERM);
  struct stat st;
  EXPECT_EQ(stat((state_dir_ + "/learned.db").c_str(), &st), 0);
  StartDaemon();
  std::string yaml = CtlOk({"suggest", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: 127.0.0.2/32")) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "cidr: \"::1/128\"")) << yaml;

  // A corrupt database is moved aside and reported; enforcement is
  // unaffected.
  StopDaemon(SIGTERM);
  unlink((state_dir_ + "/learned.db-wal").c_str());
  unlink((state_dir_ + "/learned.db-shm").c_str());
  std::ofstream(state_dir_ + "/learned.db") << std::string(8192, 'x');
  StartDaemon();
  CtlOk({"mode", "enforce", "--target", "web"});
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40009); }));
  auto log = RunCommand({"cat", daemon_log_});
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(absl::StrContains(log->output, "learned.db.corrupt-"))
      << log->output;
}

TEST_F(LearnTest, ExportAppliesBackToTheSameState) {
  AddTarget("web");
  CtlOk({"allow", "dns", "127.0.0.53"});
  CtlOk({"allow", "40001-40003/tcp", "127.0.0.2", "::1"});
  CtlOk({"allow", "icmp", "127.0.0.0/8"});
  CtlOk({"deny", "any", "127.0.0.9", "comment", "metadata"});
  CtlOk({"allow", "40005/tcp", "127.0.0.2", "--for", "1h"});
  CtlOk({"logging", "all"});
  nlohmann::json before = CtlJson({"list"})["targets"][0]["rules"];

  std::string dir = TmpFile("exported");
  std::string out = CtlOk({"export", "--dir", dir});
  EXPECT_TRUE(absl::StrContains(out, "web.yaml")) << out;
  std::ifstream in(dir + "/web.yaml");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(absl::StrContains(text.str(), "Not exported, temporary until"))
      << text.str();
  EXPECT_EQ(CtlOk({"export", "--target", "web"}).substr(0, 10),
            text.str().substr(0, 10));

  // Re-applying the export to the live target changes nothing; the
  // temporary rule, which a file cannot hold, lives on until its end.
  std::string dry = CtlOk({"apply", "-f", dir, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "= ALLOW 40005/tcp")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "+ ")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "- ")) << dry;
  CtlOk({"apply", "-f", dir});
  EXPECT_EQ(CtlJson({"list"})["targets"][0]["rules"], before);

  // From scratch: the same rules, mode and logging.
  CtlOk({"target", "remove", "web"});
  CtlOk({"apply", "-f", dir});
  nlohmann::json after = CtlJson({"list"})["targets"][0]["rules"];
  ASSERT_EQ(after.size(), before.size() - 1) << after;
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i]["action"], before[i]["action"]) << i;
    EXPECT_EQ(after[i]["ports"], before[i]["ports"]) << i;
    EXPECT_EQ(after[i]["destinations"], before[i]["destinations"]) << i;
  }
  nlohmann::json t = CtlJson({"target", "list"})["targets"][0];
  EXPECT_EQ(t["mode"], "enforce");
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("::1", 40002); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.9", 40002); }));
}

// Everything a policy file carries comes back from `export` as written:
// metadata.annotations, and each rule's name and comment apart (a name is
// not turned into a comment).
TEST_F(LearnTest, ExportWritesAnnotationsAndRuleNamesBackAsWritten) {
  const std::string file = TmpFile("named.yaml");
  std::ofstream(file) << absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\n"
      "kind: EgressPolicy\n"
      "metadata:\n"
      "  name: web\n"
      "  annotations:\n"
      "    description: \"web application: DNS and one API\"\n"
      "    owner: team-web\n"
      "spec:\n"
      "  target:\n"
      "    cgroupPath: ",
      cg_->relative_path(),
      "\n"
      "  egress:\n"
      "  - name: dns\n"
      "    to: [{ipBlock: {cidr: 127.0.0.53/32}}]\n"
      "    ports: [{port: domain}]\n"
      "  - name: api\n"
      "    comment: \"the payments API\"\n"
      "    to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
      "    ports: [{port: 40001, protocol: TCP}]\n"
      "  - comment: \"api: a comment with a colon\"\n"
      "    to: [{ipBlock: {cidr: 127.0.0.3/32}}]\n"
      "    ports: [{port: 40001, protocol: TCP}]\n"
      "  egressDeny:\n"
      "  - name: no-sandbox\n"
      "    to: [{ipBlock: {cidr: 127.0.0.9/32}}]\n");
  CtlOk({"apply", "-f", file});
  auto written = policy::LoadPolicies(file);
  ASSERT_TRUE(written.ok()) << written.status();

  const std::string dir = TmpFile("exported");
  CtlOk({"export", "--dir", dir});
  const std::string text = ReadText(dir + "/web.yaml");
  auto exported = policy::LoadPolicies(dir + "/web.yaml");
  ASSERT_TRUE(exported.ok()) << exported.status() << "\n" << text;
  EXPECT_EQ((*exported)[0].annotations, (*written)[0].annotations) << text;
  ASSERT_EQ((*exported)[0].rules.size(), (*written)[0].rules.size()) << text;
  for (size_t i = 0; i < (*written)[0].rules.size(); ++i) {
    EXPECT_EQ((*exported)[0].origins[i].name, (*written)[0].origins[i].name)
        << i << "\n"
        << text;
    EXPECT_EQ((*exported)[0].rules[i].comment, (*written)[0].rules[i].comment)
        << i << "\n"
        << text;
  }
  EXPECT_TRUE(absl::StrContains(text, "- name: dns\n")) << text;
  EXPECT_FALSE(absl::StrContains(text, "comment: dns")) << text;

  // The export applies again to the same rules, and survives a restart.
  std::string dry = CtlOk({"apply", "-f", dir, "--dry-run"});
  EXPECT_FALSE(absl::StrContains(dry, "+ ")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "- ")) << dry;
  StopDaemon(SIGTERM);
  StartDaemon();
  CtlOk({"target", "remove", "web"});
  CtlOk({"apply", "-f", dir});
  const std::string again = CtlOk({"export", "--target", "web"});
  auto reread = policy::ParsePolicy(again, "web.yaml");
  ASSERT_TRUE(reread.ok()) << reread.status() << "\n" << again;
  EXPECT_EQ(reread->annotations, (*written)[0].annotations) << again;
  EXPECT_EQ(reread->origins, (*exported)[0].origins) << again;
  EXPECT_EQ(reread->rules, (*exported)[0].rules) << again;
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.9", 40001); }));
}

// A target added by pid names its process's cgroup, whatever characters the
// cgroup's name holds; the export names exactly that cgroup in a form
// `apply` takes.
TEST_F(LearnTest, PidTargetInCgroupWithWildcardCharactersExportsAndApplies) {
  auto child = cg_->CreateChild("odd*name?[x]");
  ASSERT_TRUE(child.ok()) << child.status();
  // A sibling the name would match as a pattern: it must stay unenforced.
  auto sibling = cg_->CreateChild("oddAnameBx");
  ASSERT_TRUE(sibling.ok()) << sibling.status();
  pid_t pid = StartSleeperInCgroup(*child);
  ASSERT_GT(pid, 0);
  absl::Cleanup reap = [pid] {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  CtlOk({"target", "add", "odd", "--pid", std::to_string(pid)});
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  const std::string cgroup = (*child)->relative_path();
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["cgroup"], cgroup);

  const std::string dir = TmpFile("exported-odd");
  CtlOk({"export", "--dir", dir});
  const std::string text = ReadText(dir + "/odd.yaml");
  auto exported = policy::LoadPolicies(dir + "/odd.yaml");
  ASSERT_TRUE(exported.ok()) << exported.status() << "\n" << text;
  EXPECT_EQ((*exported)[0].target.kind, policy::TargetSource::kCgroup);

  // Onto the live target: nothing changes.
  CommandResult onto = Ctl({"apply", "-f", dir});
  ASSERT_EQ(onto.exit_code, 0) << onto.output << "\n" << text;
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["cgroup"], cgroup);
  // From scratch: the same cgroup, enforced, and its sibling is not.
  CtlOk({"target", "remove", "odd"});
  CommandResult fresh = Ctl({"apply", "-f", dir});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.output << "\n" << text;
  EXPECT_EQ(CtlJson({"target", "list"})["targets"][0]["cgroup"], cgroup);
  EXPECT_ALLOWED(
      InCgroup([] { return TcpConnect("127.0.0.2", 40001); }, *child));
  EXPECT_DENIED(
      InCgroup([] { return TcpConnect("127.0.0.3", 40001); }, *child));
  EXPECT_TRUE(Allowed(
      InCgroup([] { return TcpConnect("127.0.0.3", 40001); }, *sibling)));
  // The export of the applied target is the same file again.
  auto again = policy::ParsePolicy(CtlOk({"export", "--target", "odd"}), "x");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->target, (*exported)[0].target);
}

}  // namespace
}  // namespace egress::testing
