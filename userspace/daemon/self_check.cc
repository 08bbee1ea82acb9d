#include "userspace/daemon/self_check.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/kernel/cgroup_probe.h"

namespace egress {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

}  // namespace

SelfCheck::SelfCheck(Engine& engine, SelfCheckOptions options)
    : engine_(engine), options_(std::move(options)) {}

SelfCheck::~SelfCheck() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SelfCheck::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.interval),
                           [this] { return stop_; })) {
      lock.unlock();
      RunOnce();
      lock.lock();
    }
  });
}

std::string SelfCheck::Check(const Engine::SelfCheckTarget& t) {
  if (t.hooks_attached < t.hooks_total) {
    return absl::StrCat(t.hooks_attached, " of ", t.hooks_total,
                        " hooks attached to ", t.cgroup);
  }
  if (!t.probe) return "";  // the policy denies none of the probe addresses
  const std::string dir =
      t.cgroup == "/" ? options_.cgroup_root : options_.cgroup_root + t.cgroup;
  absl::StatusOr<int> connect_errno = ProbeConnectFromCgroup(
      dir, t.probe->addr_be, t.probe->port, absl::Seconds(5));
  // A probe that could not run (no memory, a sandbox that forbids it, a
  // frozen cgroup) says nothing about enforcement; status says that the
  // target is unchecked, and why. NotFound: no cgroup yet, nothing to check.
  const bool ran = connect_errno.ok();
  SetProbeProblem(t, ran || absl::IsNotFound(connect_errno.status())
                         ? ""
                         : std::string(connect_errno.status().message()));
  return ran ? ProbeVerdict(*connect_errno, *t.probe) : "";
}

void SelfCheck::SetProbeProblem(const Engine::SelfCheckTarget& t,
                                std::string why) {
  std::string was;
  {
    std::lock_guard<std::mutex> lock(problems_mu_);
    auto it = problems_.find(t.id);
    if (it != problems_.end()) was = it->second;
    if (why.empty()) {
      problems_.erase(t.id);
    } else {
      problems_[t.id] = why;
    }
  }
  if (why == was || !options_.log) return;
  options_.log(why.empty() ? absl::StrCat("target ", t.name,
                                          ": self-check probe runs again")
                           : absl::StrCat("target ", t.name,
                                          ": self-check cannot probe: ", why));
}

std::string SelfCheck::ProbeProblem(uint32_t id) const {
  std::lock_guard<std::mutex> lock(problems_mu_);
  auto it = problems_.find(id);
  return it == problems_.end() ? "" : it->second;
}

void SelfCheck::RunOnce() {
  const std::vector<Engine::SelfCheckTarget> targets =
      engine_.SelfCheckTargets();
  {
    // Targets gone or no longer probed (removed, audit) keep no problem.
    std::lock_guard<std::mutex> lock(problems_mu_);
    std::erase_if(problems_, [&targets](const auto& entry) {
      return std::none_of(
          targets.begin(), targets.end(),
          [&entry](const auto& t) { return t.id == entry.first; });
    });
  }
  for (const Engine::SelfCheckTarget& t : targets) {
    const std::string why = Check(t);
    const bool turned = engine_.SetSelfCheck(t.id, why);
    if (!turned) continue;
    if (options_.log) {
      options_.log(
          absl::StrCat("target ", t.name, ": self-check: degraded: ", why));
    }
    if (!options_.publish) continue;
    egress_event e{};
    e.ts_ns = MonotonicNs();
    e.target_id = t.id;
    e.kind = EGRESS_EVENT_SELF_CHECK_FAILED;
    e.reason = EGRESS_REASON_NOT_ENFORCED;
    e.verdict = EGRESS_VERDICT_DENY;  // what the policy says; not enforced
    e.hook = EGRESS_HOOK_CONNECT4;
    e.family = EGRESS_FAMILY_IPV4;
    e.proto = 6;  // IPPROTO_TCP
    if (t.probe) {
      memcpy(e.addr, &t.probe->addr_be, 4);
      e.port = htons(t.probe->port);
    }
    options_.publish(e);
  }
}

}  // namespace egress
