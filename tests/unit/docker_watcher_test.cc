// The Docker watcher against a Docker API whose answers the test times
// (tests/testing/fake_docker_api.h): events are read while an inspect is
// waiting, several containers are inspected at once, a container named again
// while inspected is inspected again, and reconnects leave no thread behind.
#include "userspace/workloads/docker_watcher.h"

#include <dirent.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_docker_api.h"
#include "tests/testing/unix_sockets.h"
#include "userspace/workloads/inspect_queue.h"

namespace egress::workloads {
namespace {

using testing::FakeDockerApi;
using testing::TempSocketDir;

// Container ids as Docker's are: hex.
constexpr char kSlow[] = "aaaa000000000001";
constexpr char kOther[] = "bbbb000000000002";
constexpr char kNew[] = "cccc000000000003";

std::string Event(const std::string& action, const std::string& id,
                  const std::string& attributes = "{}") {
  return absl::StrCat(R"({"Type":"container","Action":")", action,
                      R"(","Actor":{"ID":")", id, R"(","Attributes":)",
                      attributes, "}}");
}

bool Has(const std::vector<Container>& all, const std::string& id) {
  return std::any_of(all.begin(), all.end(),
                     [&](const Container& c) { return c.id == id; });
}

// Polls `done` every 10 ms for at most `limit`.
bool Eventually(const std::function<bool()>& done,
                absl::Duration limit = absl::Seconds(2)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

int ThreadsOfThisProcess() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

class DockerWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempSocketDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *std::move(dir);
    socket_ = dir_->path() + "/docker.sock";
    StartApi();
    DockerWatcherOptions o;
    o.socket_path = socket_;
    o.pid_cgroup = [](int pid) -> absl::StatusOr<std::string> {
      return absl::StrCat("/docker/", pid);
    };
    o.labels_in_create_events = true;
    auto w = DockerWatcher::Start(std::move(o));
    ASSERT_TRUE(w.ok()) << w.status();
    watcher_ = *std::move(w);
    ASSERT_TRUE(Eventually([&] { return watcher_->Problem().empty(); }));
    ASSERT_TRUE(api_->WaitEventStreams(1, absl::Seconds(2)));
  }
  void TearDown() override {
    // The API first: it answers every inspect still held as it goes, so no
    // inspector waits out its timeout when the watcher stops.
    api_.reset();
    watcher_.reset();
  }
  void StartApi() {
    auto api = FakeDockerApi::Start(socket_);
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = *std::move(api);
  }

  std::unique_ptr<TempSocketDir> dir_;
  std::string socket_;
  std::unique_ptr<FakeDockerApi> api_;
  std::unique_ptr<DockerWatcher> watcher_;
};

// Docker answers the inspect of a container whose start is under way only
// once the start ends (up to 2 s in a burst), while the burst's next
// containers are created and started: their create events are taken
// meanwhile, so they are classified before they start.
TEST_F(DockerWatcherTest, CreateIsTakenWhileAnInspectWaits) {
  api_->SetContainer(kSlow, "slow", 4242);
  api_->Hold(kSlow);
  api_->SendEvent(Event("start", kSlow));
  ASSERT_TRUE(api_->WaitHeldInspect(kSlow, absl::Seconds(2)));
  api_->SendEvent(Event("create", kNew, R"({"app":"burst","name":"new"})"));
  EXPECT_TRUE(Eventually([&] { return Has(watcher_->Created(), kNew); }))
      << "the create event waited for the inspect of another container";
  EXPECT_FALSE(Has(watcher_->Running(), kSlow));
  api_->Release(kSlow);
  EXPECT_TRUE(Eventually([&] { return Has(watcher_->Running(), kSlow); }));
}

// One slow inspect holds up no other: a container started meanwhile is
// known running while the slow one is still being answered.
TEST_F(DockerWatcherTest, OtherContainersAreInspectedWhileOneWaits) {
  api_->SetContainer(kSlow, "slow", 4242);
  api_->SetContainer(kOther, "other", 4343);
  api_->Hold(kSlow);
  api_->SendEvent(Event("start", kSlow));
  ASSERT_TRUE(api_->WaitHeldInspect(kSlow, absl::Seconds(2)));
  api_->SendEvent(Event("start", kOther));
  EXPECT_TRUE(Eventually([&] { return Has(watcher_->Running(), kOther); }))
      << "the inspect of one container waited for another's";
  api_->Release(kSlow);
  EXPECT_TRUE(Eventually([&] { return Has(watcher_->Running(), kSlow); }));
}

// A container that exits while its start is still being inspected: the
// inspect under way answers "running" (stale by then), and the exit is
// inspected after it, never alongside (the older answer would land last).
TEST_F(DockerWatcherTest, ContainerNamedAgainWhileInspectedIsInspectedAfter) {
  api_->SetContainer(kSlow, "slow", 4242);
  api_->Hold(kSlow);
  api_->SendEvent(Event("start", kSlow));
  ASSERT_TRUE(api_->WaitHeldInspect(kSlow, absl::Seconds(2)));
  api_->SetContainer(kSlow, "slow", 0);  // exited
  api_->SendEvent(Event("die", kSlow));
  // Not asked again while the first inspect is under way.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(api_->Inspects(kSlow), 1);
  api_->Release(kSlow);
  EXPECT_TRUE(Eventually([&] {
    return Has(watcher_->Created(), kSlow) && api_->Inspects(kSlow) == 2;
  }));
  EXPECT_FALSE(Has(watcher_->Running(), kSlow));
}

// dockerd restarts: the watcher says so, follows the new one (its events
// are taken again) and keeps no thread of the old connection.
TEST_F(DockerWatcherTest, ReconnectsAfterARestartWithNoThreadLeft) {
  const int threads = ThreadsOfThisProcess();
  for (int restart = 0; restart < 3; ++restart) {
    api_.reset();
    ASSERT_TRUE(Eventually([&] { return !watcher_->Problem().empty(); }));
    StartApi();
    ASSERT_TRUE(api_->WaitEventStreams(1, absl::Seconds(5)));
    ASSERT_TRUE(Eventually([&] { return watcher_->Problem().empty(); }));
  }
  const std::string id = absl::StrCat(kNew, "9");
  api_->SendEvent(Event("create", id, R"({"app":"burst"})"));
  EXPECT_TRUE(Eventually([&] { return Has(watcher_->Created(), id); }));
  // The fake API's threads of the connections gone were joined with it.
  EXPECT_EQ(ThreadsOfThisProcess(), threads);
}

TEST(InspectQueueTest, EachIdOnceInEventOrder) {
  InspectQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Take(), "a");
  EXPECT_EQ(q.Take(), "b");
  EXPECT_EQ(q.Take(), std::nullopt);
}

TEST(InspectQueueTest, IdNamedWhileUnderWayIsTakenAgainOnlyOnceDone) {
  InspectQueue q;
  q.Add("a");
  EXPECT_EQ(q.Take(), "a");
  q.Add("a");
  q.Add("b");
  // Not to a second inspector while the first has it.
  EXPECT_EQ(q.Take(), "b");
  EXPECT_EQ(q.Take(), std::nullopt);
  q.Done("a");
  EXPECT_EQ(q.Take(), "a");
  q.Done("a");
  q.Done("b");
  EXPECT_EQ(q.Take(), std::nullopt);
  EXPECT_EQ(q.under_way(), 0u);
}

TEST(InspectQueueTest, ClearForgetsWhatIsQueuedAndNamedAgain) {
  InspectQueue q;
  q.Add("a");
  q.Add("b");
  EXPECT_EQ(q.Take(), "a");
  q.Add("a");
  q.Clear();
  EXPECT_EQ(q.Take(), std::nullopt);
  q.Done("a");
  EXPECT_EQ(q.Take(), std::nullopt);
  EXPECT_EQ(q.queued(), 0u);
}

}  // namespace
}  // namespace egress::workloads
