// egressd --policy_dir: the directory is applied at start and on SIGHUP (or
// `egressctl reload`); a rejected directory leaves enforcement unchanged.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/fake_services.h"
#include "tests/testing/policy_text.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class PolicyDirTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (HasFatalFailure()) return;
    dir_ = state_dir_.substr(0, state_dir_.rfind('/')) + "/policies.d";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    StopDaemon(SIGTERM);
    extra_daemon_args_ = {"--policy_dir", dir_};
  }

  // web.yaml: allow TCP to 127.0.0.2 on each of `ports`.
  void WritePolicy(const std::vector<int>& ports) {
    std::ofstream(dir_ + "/web.yaml") << PolicyText(ports);
  }

  // The text of a policy for web that allows TCP to 127.0.0.2 on `ports`.
  std::string PolicyText(const std::vector<int>& ports) {
    std::string text =
        absl::StrCat(PolicyHead("web", cg_->relative_path()),
                     "  - to: [{ipBlock: {cidr: 127.0.0.2/32}}]\n"
                     "    ports:\n");
    for (int p : ports) {
      absl::StrAppend(&text, "    - {port: ", p, ", protocol: TCP}\n");
    }
    return text;
  }

  std::string DaemonLog() {
    auto log = RunCommand({"cat", daemon_log_});
    return log.ok() ? log->output : "";
  }

  // The log once it holds `text` (egressd logs a reload after its switch
  // took effect: bounded wait), else what it holds.
  std::string DaemonLogWith(const std::string& text) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    std::string log = DaemonLog();
    while (!absl::StrContains(log, text) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
      log = DaemonLog();
    }
    return log;
  }

  // Polls (bounded) until `list` shows `n` rules for web.
  bool WaitForRules(size_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      nlohmann::json t = CtlJson({"list"})["targets"];
      if (!t.empty() && t[0]["rules"].size() == n) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  // egressctl's stdout and stderr apart (Ctl interleaves them).
  struct Streams {
    int exit_code = -1;
    std::string out, err;
  };
  Streams CtlStreams(const std::vector<std::string>& args) {
    const std::string err_file =
        state_dir_.substr(0, state_dir_.rfind('/')) + "/egressctl.stderr";
    std::vector<std::string> argv = {
        "sh",       "-c",        "f=$1; shift; exec \"$@\" 2>\"$f\"",
        "sh",       err_file,    EGRESS_EGRESSCTL_PATH,
        "--socket", socket_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    Streams out;
    auto r = RunCommand(argv, absl::Seconds(60));
    if (!r.ok()) {
      ADD_FAILURE() << "egressctl could not run: " << r.status();
      return out;
    }
    out.exit_code = r->exit_code;
    out.out = r->output;
    auto err = RunCommand({"cat", err_file});
    if (err.ok()) out.err = err->output;
    return out;
  }

  std::string dir_;
};

TEST_F(PolicyDirTest, AppliedAtStartAndOnSighup) {
  WritePolicy({40001});
  StartDaemon();
  // Enforced as soon as egressd answers: applied before it serves.
  nlohmann::json targets = CtlJson({"target", "list"})["targets"];
  ASSERT_EQ(targets.size(), 1u) << targets;
  EXPECT_EQ(targets[0]["name"], "web");
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  WritePolicy({40001, 40002});
  ASSERT_EQ(kill(daemon_pid_, SIGHUP), 0);
  ASSERT_TRUE(WaitForRules(1)) << DaemonLog();  // one rule, two ports
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  EXPECT_TRUE(absl::StrContains(DaemonLogWith("SIGHUP: update target web"),
                                "SIGHUP: update target web"))
      << DaemonLog();
}

TEST_F(PolicyDirTest, ChangedFilesAreAppliedWithoutASignal) {
  WritePolicy({40001});
  StartDaemon();
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  // As a ConfigMap update does: a new file renamed into place.
  std::string tmp = dir_ + "/.web.yaml.tmp";
  WritePolicy({40001, 40002});
  ASSERT_EQ(rename((dir_ + "/web.yaml").c_str(), tmp.c_str()), 0);
  ASSERT_EQ(rename(tmp.c_str(), (dir_ + "/web.yaml").c_str()), 0);
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  EXPECT_TRUE(absl::StrContains(DaemonLogWith("policy directory changed"),
                                "policy directory changed"))
      << DaemonLog();
}

TEST_F(PolicyDirTest, RejectedDirectoryChangesNothing) {
  WritePolicy({40001});
  StartDaemon();
  nlohmann::json before = CtlJson({"list"});
  // A typo in a second file: the whole directory is rejected.
  std::ofstream(dir_ + "/zz-bad.yaml")
      << "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
         "  name: other\nspec:\n  target:\n    cgroupPath: /nowhere\n"
         "  egress:\n  - ports: [{port: smpt}]\n";
  WritePolicy({40001, 40002});
  CommandResult r = Ctl({"reload"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "zz-bad.yaml:9:")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "smtp")) << r.output;
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  // The same at start: egressd starts, keeps what it enforced, says why.
  StopDaemon(SIGTERM);
  StartDaemon();
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_TRUE(absl::StrContains(DaemonLog(), "start: policy directory"))
      << DaemonLog();
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

// egress_config_last_reload_successful from /metrics ("" when unreadable).
std::string ReloadGauge(int port) {
  auto r = HttpGet("127.0.0.1", port, "/metrics");
  if (!r.ok()) return "";
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (absl::StartsWith(line, "egress_config_last_reload_successful ")) {
      return std::string(line.substr(line.find(' ') + 1));
    }
  }
  return "";
}

TEST_F(PolicyDirTest, ReloadMetricFollowsTheLastReload) {
  WritePolicy({40001});
  StartDaemon();
  const int port = CtlJson({"status"})["metrics_port"].get<int>();
  EXPECT_EQ(ReloadGauge(port), "1");
  // Rejected through `egressctl reload` (exit 2)...
  std::ofstream(dir_ + "/zz-bad.yaml") << "kind: EgressPolicy\nspec: [\n";
  EXPECT_EQ(Ctl({"reload"}).exit_code, 2);
  EXPECT_EQ(ReloadGauge(port), "0");
  // ... back to 1 after a good one ...
  ASSERT_EQ(unlink((dir_ + "/zz-bad.yaml").c_str()), 0);
  EXPECT_EQ(Ctl({"reload"}).exit_code, 0);
  EXPECT_EQ(ReloadGauge(port), "1");
  // ... and rejected again through a file change (inotify, no command).
  std::ofstream(dir_ + "/zz-bad.yaml") << "kind: EgressPolicy\nspec: [\n";
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ReloadGauge(port) != "0" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(ReloadGauge(port), "0") << DaemonLog();
}

// A 2-byte file that yaml-cpp 0.7 would loop on (and eat memory) is
// rejected like any other bad file, and egressd keeps serving.
TEST_F(PolicyDirTest, AFileTheYamlParserLoopsOnIsRejected) {
  WritePolicy({40001});
  StartDaemon();
  std::ofstream(dir_ + "/zz-comma.yaml") << ",\n";
  CommandResult r = Ctl({"reload"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "zz-comma.yaml:1:1")) << r.output;
  EXPECT_EQ(Ctl({"status"}).exit_code, 0);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

// A rule edit of a target the directory defines is dropped by the next
// reload of its file: egressctl says so at the edit (stderr, exit 0), and
// status names the file; a target from elsewhere gets no such warning.
TEST_F(PolicyDirTest, EditsOfAFileTargetWarnThatTheNextReloadDropsThem) {
  WritePolicy({40001});
  StartDaemon();
  const std::string file = dir_ + "/web.yaml";
  Streams added =
      CtlStreams({"allow", "40002/tcp", "127.0.0.2", "--target", "web"});
  EXPECT_EQ(added.exit_code, 0) << added.out << added.err;
  EXPECT_TRUE(absl::StrContains(added.out, "Rule added to web")) << added.out;
  EXPECT_TRUE(absl::StrContains(
      added.err,
      absl::StrCat("egressctl: warning: target web is defined by ", file,
                   " (egressd --policy_dir): this change "
                   "lasts only until that directory is next "
                   "reloaded")))
      << added.err;
  EXPECT_FALSE(absl::StrContains(added.out, "warning")) << added.out;
  // JSON on stdout stays parseable; the warning is still on stderr.
  Streams deleted = CtlStreams({"delete", "allow", "40002/tcp", "127.0.0.2",
                                "--target", "web", "-o", "json"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.out << deleted.err;
  nlohmann::json j = nlohmann::json::parse(deleted.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << deleted.out;
  EXPECT_EQ(j["policy_file"], file) << j;
  EXPECT_TRUE(absl::StrContains(deleted.err, "to keep it, make it in " + file))
      << deleted.err;

  // status says where the target comes from, in text and JSON.
  EXPECT_TRUE(absl::StrContains(
      CtlOk({"status"}), absl::StrCat("  policy file ", file,
                                      " (egressd --policy_dir): rule edits "
                                      "last until it is reloaded")));
  nlohmann::json status = CtlJson({"status"});
  EXPECT_EQ(status["policy_dir"], dir_);
  EXPECT_EQ(status["targets"][0]["policy_file"], file);

  // What the warning says: the next reload drops the edit.
  Streams again =
      CtlStreams({"allow", "40002/tcp", "127.0.0.2", "--target", "web"});
  EXPECT_TRUE(absl::StrContains(again.err, "warning: target web")) << again.err;
  ASSERT_TRUE(WaitForRules(2));
  EXPECT_EQ(Ctl({"reload"}).exit_code, 0);
  EXPECT_TRUE(WaitForRules(1)) << CtlJson({"list"});

  // A target added by hand is the operator's own: no warning.
  absl::StatusOr<TestCgroup*> other = cg_->CreateChild("other");
  ASSERT_TRUE(other.ok()) << other.status();
  AddTarget("other", *other);
  Streams own =
      CtlStreams({"allow", "40003/tcp", "127.0.0.2", "--target", "other"});
  EXPECT_EQ(own.exit_code, 0) << own.out << own.err;
  EXPECT_EQ(own.err, "");
}

// A file egressd refused shows in status (text and JSON): which file, where,
// and that the policy enforced before stays; a good reload clears it.
TEST_F(PolicyDirTest, StatusNamesARejectedFileAndWhatStaysEnforced) {
  WritePolicy({40001});
  StartDaemon();
  EXPECT_FALSE(CtlJson({"status"}).contains("policy_dir_error"));
  std::ofstream(dir_ + "/zz-bad.yaml")
      << "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
         "  name: other\nspec:\n  target:\n    cgroupPath: /nowhere\n"
         "  egress:\n  - ports: [{port: smpt}]\n";
  EXPECT_EQ(Ctl({"reload"}).exit_code, 2);
  const std::string where = dir_ + "/zz-bad.yaml:9:";
  std::string text = CtlOk({"status"});
  EXPECT_TRUE(
      absl::StrContains(text, absl::StrCat("warning: the last reload of ", dir_,
                                           " was REJECTED: ", where)))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "unknown service \"smpt\"")) << text;
  EXPECT_TRUE(absl::StrContains(text,
                                "the policy enforced before stays in "
                                "force"))
      << text;
  nlohmann::json status = CtlJson({"status"});
  EXPECT_TRUE(
      absl::StartsWith(status["policy_dir_error"].get<std::string>(), where))
      << status;
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));

  // The same when egressd starts with the bad file.
  StopDaemon(SIGTERM);
  StartDaemon();
  status = CtlJson({"status"});
  EXPECT_TRUE(absl::StartsWith(status.value("policy_dir_error", ""), where))
      << status;

  ASSERT_EQ(unlink((dir_ + "/zz-bad.yaml").c_str()), 0);
  EXPECT_EQ(Ctl({"reload"}).exit_code, 0);
  EXPECT_FALSE(CtlJson({"status"}).contains("policy_dir_error"));
  EXPECT_FALSE(absl::StrContains(CtlOk({"status"}), "REJECTED"));
}

TEST_F(PolicyDirTest, MissingOrEmptyDirectoryIsNotAnError) {
  StartDaemon();
  CommandResult r = Ctl({"reload"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "no *.yaml")) << r.output;
  ASSERT_EQ(rmdir(dir_.c_str()), 0);
  r = Ctl({"reload"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "does not exist")) << r.output;
}

// A policy file written in two steps (scp, curl -o, a slow copy) is often
// valid half-way, with only some of its rules: nothing of it is applied
// while its writer holds it open, and all of it once it is closed. Both for
// a new file and for one rewritten in place.
TEST_F(PolicyDirTest, AFileStillBeingWrittenIsAppliedOnlyOnceClosed) {
  StartDaemon();  // an empty directory: no target
  // Writes the first half of `text` to web.yaml (up to the line holding
  // `cut`: a valid policy without it), checks that nothing of it is applied
  // past the 1 s of quiet a reload waits for, then writes the rest.
  auto write_in_two_steps = [&](int flags, const std::string& text,
                                const std::string& cut,
                                const std::function<void()>& meanwhile) {
    const size_t at = text.find(cut);
    ASSERT_NE(at, std::string::npos);
    const size_t first = text.rfind('\n', at) + 1;
    const int fd =
        open((dir_ + "/web.yaml").c_str(), O_WRONLY | O_CLOEXEC | flags, 0600);
    ASSERT_GE(fd, 0);
    absl::Cleanup close_fd = [fd] { close(fd); };
    ASSERT_EQ(write(fd, text.data(), first), static_cast<ssize_t>(first));
    absl::SleepFor(absl::Milliseconds(2500));
    meanwhile();
    const size_t rest = text.size() - first;
    ASSERT_EQ(write(fd, text.data() + first, rest), static_cast<ssize_t>(rest));
  };

  write_in_two_steps(
      O_CREAT | O_EXCL, PolicyText({40003, 40001}), "40001", [&] {
        EXPECT_TRUE(CtlJson({"target", "list"})["targets"].empty())
            << DaemonLog();
        EXPECT_TRUE(absl::StrContains(
            DaemonLog(), dir_ + "/web.yaml is still open for writing"))
            << DaemonLog();
      });
  ASSERT_TRUE(WaitForRules(1)) << DaemonLog();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40003); }));

  // In place: the first half would drop 40001 and 40003.
  write_in_two_steps(O_TRUNC, PolicyText({40005, 40001, 40003}), "40001", [&] {
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40005); }));
  });
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40005); }, Allowed));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40003); }));
}

// The directory is a path: a release symlink swapped to another directory
// is applied and watched from then on, and a directory made after egressd
// started is applied when it appears.
TEST_F(PolicyDirTest, TheWatchFollowsTheDirectoryThePathNames) {
  const std::string base = dir_.substr(0, dir_.rfind('/'));
  const std::string v1 = base + "/release-1", v2 = base + "/release-2";
  ASSERT_EQ(rmdir(dir_.c_str()), 0);
  extra_daemon_args_ = {"--policy_dir", dir_};
  StartDaemon();  // the path names nothing yet
  EXPECT_TRUE(
      absl::StrContains(DaemonLogWith("not watching"), "not watching " + dir_))
      << DaemonLog();
  ASSERT_EQ(mkdir(v1.c_str(), 0700), 0);
  ASSERT_EQ(mkdir(v2.c_str(), 0700), 0);
  std::ofstream(v1 + "/web.yaml") << PolicyText({40001});
  std::ofstream(v2 + "/web.yaml") << PolicyText({40002});
  ASSERT_EQ(symlink(v1.c_str(), dir_.c_str()), 0);
  ASSERT_TRUE(WaitForRules(1)) << DaemonLog();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  // As a deploy swaps its "current" link: a new link renamed over the old.
  const std::string next = base + "/next";
  ASSERT_EQ(symlink(v2.c_str(), next.c_str()), 0);
  ASSERT_EQ(rename(next.c_str(), dir_.c_str()), 0);
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40002); }, Allowed));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  // An edit in the directory the link names now is applied.
  std::ofstream(v2 + "/web.yaml") << PolicyText({40004});
  EXPECT_ALLOWED(
      InCgroupUntil([] { return TcpConnect("127.0.0.2", 40004); }, Allowed));
  ASSERT_EQ(unlink(dir_.c_str()), 0);
  for (const std::string& d : {v1, v2}) {
    ASSERT_EQ(unlink((d + "/web.yaml").c_str()), 0);
    ASSERT_EQ(rmdir(d.c_str()), 0);
  }
}

}  // namespace
}  // namespace egress::testing
