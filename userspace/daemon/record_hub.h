// Kernel records from the ring buffer to the event pipeline, with the
// engine's context (target, rule number, cgroup path) and learning, behind
// the two faces the loop and the control service need. Thread-safe: the
// metrics thread reads its counters.
#ifndef EGRESS_USERSPACE_DAEMON_RECORD_HUB_H_
#define EGRESS_USERSPACE_DAEMON_RECORD_HUB_H_

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "userspace/daemon/control_service.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/event_loop.h"
#include "userspace/daemon/learner.h"
#include "userspace/events/event_pipeline.h"
#include "userspace/kernel/event_reader.h"
#include "userspace/kernel/limit_sweeper.h"

namespace egress {

struct RecordHubOptions {
  std::string node_name;
  std::shared_ptr<EventSink> sink;  // may be null
  // Reports held-back records of destinations not tried again (may be
  // null: no summaries).
  std::optional<LimitSweeper> sweeper;
  // The container of a record's cgroup (by id, or path), with the labels
  // the record's target selects by; may be null.
  std::function<EventContext::Container(uint64_t, const std::string&,
                                        const std::string& target)>
      container_of;
};

class RecordHub : public RecordSource, public RecordStream {
 public:
  static absl::StatusOr<std::unique_ptr<RecordHub>> Create(
      int events_fd, Engine& engine, Learner& learner,
      RecordHubOptions options);

  // A `--target` that names no target now is accepted when kept records
  // carry the name (a removed target's), with a warning in the answer;
  // NotFound when none does either.
  absl::StatusOr<control::EventsResponse> Recent(
      const control::EventsRequest& request) override;
  void Drain() override;
  // A record egressd made itself (an existing connection) through the same
  // pipeline as the kernel's.
  void Publish(const egress_event& e);
  void FlushFollowers() override;
  void SweepHeldBack() override;
  absl::StatusOr<FollowAnswer> StartFollow(
      const control::EventsRequest& request) override;
  void Follow(uint64_t follower, UniqueFd fd) override;

  uint64_t records_read() const;
  uint64_t records_dropped() const;
  uint64_t sink_errors() const;

 private:
  RecordHub(Engine& engine, Learner& learner, RecordHubOptions options);
  EventContext Context(const egress_event& e);
  // "" when `target` is "" or a target's name; a warning when no target
  // has the name but kept records carry it; NotFound when neither. Needs
  // mu_.
  absl::StatusOr<std::string> TargetWarningLocked(
      const std::string& target) const;

  Engine& engine_;
  Learner& learner_;
  const int64_t realtime_offset_ns_;
  std::string node_name_;
  mutable std::mutex mu_;
  std::unique_ptr<EventPipeline> pipeline_;
  std::unique_ptr<EventReader> reader_;
  std::optional<LimitSweeper> sweeper_;
  std::function<EventContext::Container(uint64_t, const std::string&,
                                        const std::string&)>
      container_of_;
  std::string last_sweep_error_;  // logged once per distinct error
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_RECORD_HUB_H_
