// The field self-check: egressd probes every enforcing target from inside
// its cgroup (a connect its policy denies, from a network namespace with no
// route) and turns a target whose hook did not refuse it degraded: status,
// list, the exit code of `status`, a metric and a record say so. A healthy
// target stays healthy.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/command.h"
#include "tests/testing/file_util.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/cgroup_probe.h"

namespace egress::testing {
namespace {

class SelfCheckTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StopDaemon(SIGTERM);
    extra_daemon_args_ = {"--self_check_interval_ms", "100"};
    StartDaemon();
    auto other = TestCgroup::Create("selfcheck-db");
    ASSERT_TRUE(other.ok()) << other.status();
    db_cg_ = *std::move(other);
  }
  void TearDown() override {
    EgressdTest::TearDown();
    db_cg_.reset();
  }

  // A target from `status -o json` (which exits 1 once one is degraded).
  nlohmann::json Target(const std::string& name, int* exit_code = nullptr) {
    CommandResult r = Ctl({"status", "-o", "json"});
    if (exit_code != nullptr) *exit_code = r.exit_code;
    nlohmann::json status = nlohmann::json::parse(r.output, nullptr, false);
    if (status.is_discarded() || !status.contains("targets")) return {};
    for (const auto& t : status["targets"]) {
      if (t["name"] == name) return t;
    }
    return nlohmann::json::object();
  }

  std::unique_ptr<TestCgroup> db_cg_;
};

// systemd's ProtectControlGroups=yes (the shipped unit) mounts the cgroup
// file system read-only for egressd: writing a cgroup.procs fails with
// EROFS. The probe is born in the target's cgroup instead, so it still
// proves enforcement there: EPERM from the target's hook, ENETUNREACH (its
// network namespace has no route) from a cgroup no target holds.
TEST_F(SelfCheckTest, ProbeRunsWhereTheCgroupMountIsReadOnly) {
  AddTarget("web");  // no rules: every destination is denied
  absl::StatusOr<std::string> root = Cgroup2Root();
  ASSERT_TRUE(root.ok()) << root.status();
  uint32_t addr_be = 0;
  ASSERT_EQ(inet_pton(AF_INET, "192.0.2.1", &addr_be), 1);
  // A thread of its own: the mount namespace it unshares (and the read-only
  // remount in it) is its own and goes with it; the probes it forks inherit
  // it.
  std::string setup_error;
  int procs_errno = 0;
  absl::StatusOr<int> in_target = absl::UnknownError("not run");
  absl::StatusOr<int> outside = absl::UnknownError("not run");
  std::thread sandboxed([&] {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount(nullptr, root->c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY,
              nullptr) != 0) {
      setup_error = strerror(errno);
      return;
    }
    const std::string procs = db_cg_->path() + "/cgroup.procs";
    UniqueFd fd(open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    procs_errno = fd.valid() ? 0 : errno;
    in_target =
        ProbeConnectFromCgroup(cg_->path(), addr_be, 9, absl::Seconds(5));
    outside =
        ProbeConnectFromCgroup(db_cg_->path(), addr_be, 9, absl::Seconds(5));
  });
  sandboxed.join();
  ASSERT_EQ(setup_error, "");
  // The sandbox is what the unit makes: cgroup.procs cannot be written.
  EXPECT_EQ(procs_errno, EROFS);
  ASSERT_TRUE(in_target.ok()) << in_target.status();
  EXPECT_EQ(*in_target, EPERM) << strerror(*in_target);
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_EQ(*outside, ENETUNREACH) << strerror(*outside);
  // And the real cgroup mount stayed writable for everyone else.
  UniqueFd fd(
      open((db_cg_->path() + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << strerror(errno);
}

// Where clone3 is refused (seccomp: ENOSYS, as systemd's RestrictNamespaces=
// and older container runtimes' filters answer it), the probe is forked and
// moved into the cgroup by its cgroup.procs, and proves the same: EPERM from
// the target's hook, ENETUNREACH from a cgroup no target holds.
TEST_F(SelfCheckTest, ProbeFallsBackToForkWhereClone3IsRefused) {
  AddTarget("web");  // no rules: every destination is denied
  uint32_t addr_be = 0;
  ASSERT_EQ(inet_pton(AF_INET, "192.0.2.1", &addr_be), 1);
  // A thread of its own: a seccomp filter binds the thread that loads it
  // (no TSYNC) and the probes it forks, and ends with it.
  std::string setup_error;
  int clone3_errno = 0;
  absl::StatusOr<int> in_target = absl::UnknownError("not run");
  absl::StatusOr<int> outside = absl::UnknownError("not run");
  std::thread filtered([&] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) {
      setup_error = "seccomp_init failed";
      return;
    }
    absl::Cleanup release = [&] { seccomp_release(ctx); };
    if (int rc =
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        rc != 0) {
      setup_error = absl::StrCat("seccomp_rule_add: ", strerror(-rc));
      return;
    }
    if (int rc = seccomp_load(ctx); rc != 0) {
      setup_error = absl::StrCat("seccomp_load: ", strerror(-rc));
      return;
    }
    // The filter is what the fallback needs to see.
    clone3_errno = syscall(SYS_clone3, nullptr, 0) < 0 ? errno : 0;
    in_target =
        ProbeConnectFromCgroup(cg_->path(), addr_be, 9, absl::Seconds(5));
    outside =
        ProbeConnectFromCgroup(db_cg_->path(), addr_be, 9, absl::Seconds(5));
  });
  filtered.join();
  ASSERT_EQ(setup_error, "");
  EXPECT_EQ(clone3_errno, ENOSYS) << strerror(clone3_errno);
  ASSERT_TRUE(in_target.ok()) << in_target.status();
  EXPECT_EQ(*in_target, EPERM) << strerror(*in_target);
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_EQ(*outside, ENETUNREACH) << strerror(*outside);
}

// A probe that cannot run says nothing about enforcement, and status says
// so: the target is neither healthy-by-silence nor degraded. A frozen
// cgroup (`docker pause`) holds the probe born in it until its deadline.
TEST_F(SelfCheckTest, AProbeThatCannotRunIsAWarningNotAVerdict) {
  AddTarget("web");
  const std::string freeze = cg_->path() + "/cgroup.freeze";
  ASSERT_TRUE(WriteFile(freeze, "1").ok());
  absl::Cleanup thaw = [&] { WriteFile(freeze, "0").IgnoreError(); };
  const std::string kWarning = "self-check cannot probe this target: ";
  auto warning = [&](const nlohmann::json& t) -> std::string {
    if (!t.contains("warnings")) return "";
    for (const auto& w : t["warnings"]) {
      if (absl::StartsWith(w.get<std::string>(), kWarning)) return w;
    }
    return "";
  };
  nlohmann::json web;
  int status_exit = -1;
  // The first round's probe waits out its 5 s deadline.
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  do {
    absl::SleepFor(absl::Milliseconds(200));
    web = Target("web", &status_exit);
  } while (warning(web).empty() && absl::Now() < deadline);
  EXPECT_TRUE(absl::StrContains(warning(web), "did not finish within"))
      << web.dump(2);
  EXPECT_FALSE(web.contains("degraded")) << web.dump(2);
  EXPECT_EQ(status_exit, 0);

  WriteFile(freeze, "0").IgnoreError();
  deadline = absl::Now() + absl::Seconds(15);
  do {
    absl::SleepFor(absl::Milliseconds(200));
    web = Target("web");
  } while (!warning(web).empty() && absl::Now() < deadline);
  EXPECT_EQ(warning(web), "") << web.dump(2);
  EXPECT_FALSE(web.contains("degraded")) << web.dump(2);
}

TEST_F(SelfCheckTest, DetachedHookTurnsTheTargetDegradedAndHealthyOneStays) {
  AddTarget("web");
  AddTarget("db", db_cg_.get());
  // Several rounds pass: both are healthy, and the probes stayed inside.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE(Target("web").contains("degraded")) << Target("web").dump();
  EXPECT_FALSE(Target("db").contains("degraded")) << Target("db").dump();
  EXPECT_EQ(Ctl({"status"}).exit_code, 0);

  // Someone detaches web's links behind egressd's back, with its pins
  // replaced by a dangling symlink so that egressd cannot re-pin or
  // re-attach them (verify_test.cc does the same).
  // web was added first: target id 1 (as in verify_test.cc).
  const std::string web_pins =
      absl::StrCat(bpffs_dir_, "/v", EGRESS_ABI_VERSION, "/targets/1");
  std::vector<UniqueFd> links;
  auto listing = RunCommand({"ls", web_pins});
  ASSERT_TRUE(listing.ok());
  for (absl::string_view name :
       absl::StrSplit(listing->output, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(name, "link_")) continue;
    links.emplace_back(bpf_obj_get(absl::StrCat(web_pins, "/", name).c_str()));
    ASSERT_TRUE(links.back().valid()) << name;
  }
  ASSERT_FALSE(links.empty()) << listing->output;
  bool sabotaged = false;
  for (int i = 0; i < 50 && !sabotaged; ++i) {
    RunCommand({"rm", "-rf", web_pins}).IgnoreError();
    sabotaged = symlink("/nonexistent", web_pins.c_str()) == 0;
  }
  ASSERT_TRUE(sabotaged) << strerror(errno);
  for (UniqueFd& link : links) ASSERT_EQ(bpf_link_detach(link.get()), 0);

  nlohmann::json web;
  int status_exit = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    absl::SleepFor(absl::Milliseconds(50));
    web = Target("web", &status_exit);
  } while (!web.contains("degraded") && absl::Now() < deadline);
  ASSERT_TRUE(web.contains("degraded")) << web.dump(2);
  EXPECT_FALSE(web["degraded"].get<std::string>().empty());
  // The same `status` that showed it exits 1. (egressd may repair the
  // links soon after: the record below stays.)
  EXPECT_EQ(status_exit, 1);
  EXPECT_FALSE(Target("db").contains("degraded")) << Target("db").dump();

  std::string metrics = ScrapeMetrics();
  EXPECT_TRUE(
      absl::StrContains(metrics, "egress_target_degraded{target=\"web\"} 1"))
      << metrics;
  EXPECT_TRUE(
      absl::StrContains(metrics, "egress_target_degraded{target=\"db\"} 0"))
      << metrics;
  EXPECT_FALSE(absl::StrContains(metrics, "egress_self_check_failures_total 0"))
      << metrics;

  CommandResult events =
      Ctl({"events", "--target", "web", "--last", "1000", "-o", "json"});
  EXPECT_TRUE(absl::StrContains(events.output, "\"self_check_failed\""))
      << events.output;
  CommandResult db_events =
      Ctl({"events", "--target", "db", "--last", "1000", "-o", "json"});
  EXPECT_FALSE(absl::StrContains(db_events.output, "self_check_failed"))
      << db_events.output;
  // The probes' own refused connects are marked as the probe's.
  EXPECT_TRUE(absl::StrContains(db_events.output, "egress-probe"))
      << db_events.output;
  unlink(web_pins.c_str());
}

}  // namespace
}  // namespace egress::testing
