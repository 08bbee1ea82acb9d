// An egressd whose start fails part-way takes back the pins it made in this
// run (a fresh --bpffs is left as it was: absent) and keeps every pin that
// was there before: those are the enforced state, and a failed start must
// not lift it (fail-closed). For the same reason it keeps the pins it made
// for targets it attached (after a reboot: the state's).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/command.h"
#include "tests/testing/socket_probes.h"
#include "userspace/common/fs.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {
namespace {

// Every path below `dir` (bpffs: pins and directories), sorted by find.
std::string PinTree(const std::string& dir) {
  auto r = RunCommand({"sh", "-c", absl::StrCat("find '", dir, "' | sort")});
  return r.ok() ? r->output : "";
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class FailedStartTest : public EgressdTest {
 protected:
  void SetUp() override {
    EgressdTest::SetUp();
    if (HasFatalFailure() || state_dir_.empty()) return;
    // A port taken: --metrics_addr cannot bind it.
    taken_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(taken_.valid());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(taken_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)),
              0);
    ASSERT_EQ(listen(taken_.get(), 1), 0);
    socklen_t len = sizeof(a);
    ASSERT_EQ(getsockname(taken_.get(), reinterpret_cast<sockaddr*>(&a), &len),
              0);
    const std::string tmp = state_dir_.substr(0, state_dir_.rfind('/'));
    not_a_dir_ = tmp + "/plain-file";
    FILE* f = fopen(not_a_dir_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
    not_cgroup_ = tmp + "/not-a-cgroup";
    ASSERT_EQ(mkdir(not_cgroup_.c_str(), 0700), 0);
    failures_ = {
        {"--metrics_addr", absl::StrCat("127.0.0.1:", ntohs(a.sin_port))},
        {"--cgroup_root", not_cgroup_},
        {"--rescan_interval_ms", "0"},
        {"--rescan_interval_ms", "3600001"},
    };
  }

  // egressd on `bpffs` and `state` with one bad flag; asserts it exits 1.
  void FailingStart(const std::string& bpffs, const std::string& state,
                    const std::string& socket,
                    const std::pair<std::string, std::string>& bad) {
    auto r =
        RunCommand({EGRESS_EGRESSD_PATH, "--socket", socket, "--bpffs", bpffs,
                    "--state_dir", state, "--metrics_addr", "127.0.0.1:0",
                    "--self_check_interval_ms", "0", "--docker_socket", "",
                    "--containerd_socket", "", bad.first, bad.second},
                   absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 1) << bad.first << "=" << bad.second << ":\n"
                               << r->output;
  }

  UniqueFd taken_;
  std::string not_a_dir_, not_cgroup_;
  std::vector<std::pair<std::string, std::string>> failures_;
};

TEST_F(FailedStartTest, FreshPinDirectoryIsLeftAbsent) {
  const std::string fresh = bpffs_dir_ + "-fresh";
  const std::string state = state_dir_ + "-fresh";
  auto cleanup = [&] { RemoveTree(fresh).IgnoreError(); };
  absl::Cleanup on_exit = cleanup;
  std::vector<std::pair<std::string, std::string>> all = failures_;
  all.push_back({"--socket", not_a_dir_ + "/sub/egressd.sock"});
  for (const auto& bad : all) {
    std::string socket = socket_path_ + "-fresh";
    if (bad.first == "--socket") socket = bad.second;
    // --socket is given twice for the socket case: the last one counts.
    FailingStart(fresh, state, socket, bad);
    EXPECT_FALSE(Exists(fresh)) << bad.first << "=" << bad.second << " left:\n"
                                << PinTree(fresh);
    cleanup();
  }
}

TEST_F(FailedStartTest, PinsOfAnEarlierRunAreKeptAndEnforce) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  const std::string before = PinTree(bpffs_dir_);
  ASSERT_NE(before, "");
  for (const auto& bad : failures_) {
    FailingStart(bpffs_dir_, state_dir_, socket_path_, bad);
    EXPECT_EQ(PinTree(bpffs_dir_), before) << bad.first << "=" << bad.second;
    EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
    EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  }
  // And the next good start adopts them.
  StartDaemon();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
}

// After a reboot the pins are gone and the state is not: a start that
// attached the state's targets and then failed keeps the pins it made, so
// the targets stay enforced until a start succeeds (a crash-looping unit
// must not leave them open).
TEST_F(FailedStartTest, PinsOfTheStateMadeByAFailedStartAreKept) {
  AddTarget("web");
  CtlOk({"allow", "40001/tcp", "127.0.0.2"});
  StopDaemon(SIGTERM);
  // As a reboot leaves it: no pins, so nothing enforced.
  ASSERT_TRUE(RemoveTree(bpffs_dir_).ok());
  ASSERT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }),
            ECONNREFUSED);
  FailingStart(bpffs_dir_, state_dir_, socket_path_, failures_[0]);
  EXPECT_TRUE(Exists(bpffs_dir_));
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
  // And the next good start adopts them.
  StartDaemon();
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_EQ(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }), EPERM);
}

}  // namespace
}  // namespace egress::testing
