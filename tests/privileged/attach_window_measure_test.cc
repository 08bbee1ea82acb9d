// A measuring tool, not a test of the suite (DISABLED_: run by hand):
// how long a re-created target cgroup runs unenforced, and how many
// datagrams get out meanwhile, for a target egressd knows only by attaching
// to it (a cgroup right below the cgroup2 root is not watched: the old way)
// and for one watched by name at its parent (bpf/lib/config.h). Results go
// to stdout; docs/bypasses.md quotes them.
//
//   egress_privileged_tests --gtest_also_run_disabled_tests
//     --gtest_filter='AttachWindowMeasure.*'
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/clone_into_cgroup.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

constexpr int kRounds = 30;
// A child sends until refused, for at most this long.
constexpr int64_t kMaxWindowNs = 2'000'000'000;

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Written by the child (a MAP_SHARED page survives clone3 without
// CLONE_VM), read by the parent.
struct Round {
  int64_t created_ns;   // mkdir done (parent)
  int64_t refused_ns;   // first EPERM (child); 0 = never
  int32_t sent;         // datagrams the kernel accepted before that
  int32_t other_error;  // an errno other than EPERM, if any
};

struct Window {
  std::vector<int64_t> us;  // mkdir -> first refusal
  int sent = 0;             // datagrams out, all rounds
  int never = 0;            // rounds never refused within kMaxWindowNs
};

class AttachWindowMeasure : public EgressdTest {
 protected:
  Window Measure(const std::string& path) {
    Window w;
    auto* r =
        static_cast<Round*>(mmap(nullptr, sizeof(Round), PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (r == MAP_FAILED) return w;
    for (int i = 0; i < kRounds; ++i) {
      *r = Round{};
      if (rmdir(path.c_str()) != 0 || mkdir(path.c_str(), 0755) != 0) break;
      r->created_ns = MonoNs();
      auto st = RunClonedIntoCgroup(path, [r] {
        while (MonoNs() - r->created_ns < kMaxWindowNs) {
          int e = UdpSendto("127.0.0.1", 9);
          if (e == EPERM) {
            r->refused_ns = MonoNs();
            return 0;
          }
          if (e != 0 && e != ECONNREFUSED) r->other_error = e;
          ++r->sent;
        }
        return 0;
      });
      if (!st.ok()) continue;
      w.sent += r->sent;
      if (r->refused_ns == 0) {
        ++w.never;
      } else {
        w.us.push_back((r->refused_ns - r->created_ns) / 1000);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    munmap(r, sizeof(Round));
    std::sort(w.us.begin(), w.us.end());
    return w;
  }

  static void Print(const std::string& what, const Window& w) {
    auto at = [&w](double q) {
      return w.us.empty()
                 ? -1
                 : w.us[std::min(w.us.size() - 1,
                                 static_cast<size_t>(q * w.us.size()))];
    };
    printf(
        "%s: %d rounds, window us: min %lld median %lld p90 %lld max %lld; "
        "datagrams out %d; never refused %d\n",
        what.c_str(), kRounds, static_cast<long long>(at(0)),
        static_cast<long long>(at(0.5)), static_cast<long long>(at(0.9)),
        static_cast<long long>(w.us.empty() ? -1 : w.us.back()), w.sent,
        w.never);
  }
};

TEST_F(AttachWindowMeasure, DISABLED_UnwatchedVersusWatched) {
  auto top = TestCgroup::Create("window");
  ASSERT_TRUE(top.ok()) << top.status();
  auto svc = cg_->CreateChild("svc.service");
  ASSERT_TRUE(svc.ok()) << svc.status();
  CtlOk({"target", "add", "top", "--cgroup", (*top)->relative_path()});
  CtlOk({"target", "add", "svc", "--cgroup", (*svc)->relative_path()});
  Window old_way = Measure((*top)->path());
  Window watched = Measure((*svc)->path());
  Print("attached by egressd on mkdir (unwatched)", old_way);
  Print("watched by name at the parent", watched);
  EXPECT_EQ(watched.sent, 0);
  CtlOk({"target", "remove", "top"});
  EXPECT_TRUE((*top)->Remove().ok());
}

}  // namespace
}  // namespace egress::testing
