#include "userspace/daemon/record_hub.h"

#include <stdio.h>
#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace {

// Records carry monotonic time; events show wall-clock time.
int64_t RealtimeOffsetNs() {
  timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t{real.tv_sec} - mono.tv_sec) * 1000000000 +
         (real.tv_nsec - mono.tv_nsec);
}

absl::StatusOr<EventFilter> FilterOf(const control::EventsRequest& r) {
  absl::StatusOr<EventFilter> filter = MakeEventFilter(r.target, r.verdict);
  if (filter.ok()) {
    filter->container = r.container;
    filter->pod = r.pod;
  }
  return filter;
}

EventFormat FormatOf(const control::EventsRequest& r) {
  return r.format == control::EventFormat::kText ? EventFormat::kText
                                                 : EventFormat::kJson;
}

}  // namespace

RecordHub::RecordHub(Engine& engine, Learner& learner, RecordHubOptions options)
    : engine_(engine),
      learner_(learner),
      realtime_offset_ns_(RealtimeOffsetNs()),
      node_name_(std::move(options.node_name)),
      sweeper_(std::move(options.sweeper)),
      container_of_(std::move(options.container_of)) {
  EventPipelineOptions p;
  p.resolve_context = [this](const egress_event& e) { return Context(e); };
  p.sink = std::move(options.sink);
  p.observers.push_back([this](const EventRecord& r) {
    // A removed target's learning was forgotten with it.
    if (r.ctx.target_removed) return;
    // Only an allowed flow's learning depends on the level and mode (when
    // allows are recorded, the connect's own record was learned).
    bool allows_recorded = false;
    if (r.raw.kind == EGRESS_EVENT_FLOW_ESTABLISHED) {
      const RecordTarget t = engine_.LookupRecord(r.raw.target_id, 0);
      allows_recorded = (policy::LoggingFlags(t.logging, t.mode) &
                         EGRESS_TF_EVENT_ALLOW) != 0;
    }
    learner_.Learn(r.raw, r.ctx.target, allows_recorded, realtime_offset_ns_);
  });
  pipeline_ = std::make_unique<EventPipeline>(std::move(p));
}

absl::StatusOr<std::unique_ptr<RecordHub>> RecordHub::Create(
    int events_fd, Engine& engine, Learner& learner, RecordHubOptions options) {
  auto hub = std::unique_ptr<RecordHub>(
      new RecordHub(engine, learner, std::move(options)));
  RecordHub* self = hub.get();
  EGRESS_ASSIGN_OR_RETURN(
      hub->reader_,
      EventReader::Create(
          events_fd,
          [self](const egress_event& e) { self->pipeline_->OnRecord(e); },
          [self](const egress_dns_answer_event& a) {
            const RecordTarget t = self->engine_.LookupRecord(a.target_id, 0);
            // A removed target learns nothing (its learning was forgotten).
            self->learner_.LearnAnswer(a, t.removed ? "" : t.name,
                                       self->realtime_offset_ns_);
          }));
  return hub;
}

EventContext RecordHub::Context(const egress_event& e) {
  RecordTarget target = engine_.LookupRecord(e.target_id, e.rule_id);
  EventContext ctx;
  ctx.realtime_offset_ns = realtime_offset_ns_;
  ctx.node_name = node_name_;
  ctx.target = target.name;
  ctx.target_removed = target.removed;
  ctx.rule_number = target.rule_number;
  engine_.RecordNames(e, &ctx.destination_names, &ctx.unlearned_names);
  // An unclassified workload's record names where it runs, too: the
  // operator learns which new container or pod met the default.
  if (!target.name.empty() || e.reason == EGRESS_REASON_UNCLASSIFIED) {
    ctx.cgroup_path = engine_.CgroupPath(e.cgroup_id, e.target_id);
    if (container_of_)
      ctx.container = container_of_(e.cgroup_id, ctx.cgroup_path, target.name);
  }
  return ctx;
}

absl::StatusOr<std::string> RecordHub::TargetWarningLocked(
    const std::string& target) const {
  if (target.empty()) return std::string();
  absl::Status known = engine_.TargetsWithoutRules(target, false).status();
  if (known.ok()) return std::string();
  if (!absl::IsNotFound(known)) return known;
  // Records carry the name they were drained with: a removed target's are
  // kept, and an operator looking into a removed workload wants them. A
  // name nothing carries is more likely a typo than an empty history.
  if (!pipeline_->KeepsRecordsOf(target)) {
    return absl::NotFoundError(absl::StrCat(
        "no target named '", target,
        "', and none of the records egressd keeps carries that name"));
  }
  return absl::StrCat("no target named '", target,
                      "' exists now; these are the records egressd still "
                      "keeps that carry that name");
}

absl::StatusOr<control::EventsResponse> RecordHub::Recent(
    const control::EventsRequest& request) {
  EGRESS_ASSIGN_OR_RETURN(EventFilter filter, FilterOf(request));
  std::lock_guard<std::mutex> lock(mu_);
  control::EventsResponse out;
  EGRESS_ASSIGN_OR_RETURN(out.warning, TargetWarningLocked(filter.target));
  if (request.follow) EGRESS_RETURN_IF_ERROR(pipeline_->CanFollow());
  // Like tail -f: a follower gets no backlog unless it asks (--last N).
  size_t last = request.last.value_or(request.follow ? 0 : 100);
  out.lines = pipeline_->RecentLines(filter, last, FormatOf(request));
  return out;
}

void RecordHub::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  // In batches that fit a follower's buffer (1 MiB: 512 JSON lines of at
  // most ~1 KiB), with the followers flushed between batches: a burst
  // larger than one buffer reaches a follower that reads. Bounded: at most
  // the ring's worth of records and kFollowerWait of waiting per call.
  constexpr int kBatchRecords = 512;
  constexpr int kMaxBatches = EGRESS_RINGBUF_BYTES / 128 / kBatchRecords;
  constexpr absl::Duration kFollowerWait = absl::Milliseconds(250);
  const absl::Time deadline = absl::Now() + kFollowerWait;
  for (int batch = 0; batch < kMaxBatches; ++batch) {
    absl::StatusOr<int> n = reader_->Drain(kBatchRecords);
    if (!n.ok() || *n < kBatchRecords) break;
    pipeline_->FlushWaiting(deadline);
  }
}

void RecordHub::Publish(const egress_event& e) {
  std::lock_guard<std::mutex> lock(mu_);
  pipeline_->OnRecord(e, EventPipeline::Origin::kEgressd);
}

void RecordHub::SweepHeldBack() {
  if (!sweeper_) return;
  // The summaries go into the ring buffer; the next Drain reads them.
  absl::StatusOr<egress_sweep_args> swept = sweeper_->Sweep();
  std::string error = swept.ok() ? "" : swept.status().ToString();
  if (error != last_sweep_error_ && !error.empty()) {
    fprintf(stderr, "egressd: held-back record sweep: %s\n", error.c_str());
  }
  last_sweep_error_ = error;
}

void RecordHub::FlushFollowers() {
  std::lock_guard<std::mutex> lock(mu_);
  pipeline_->Flush();
}

absl::StatusOr<FollowAnswer> RecordHub::StartFollow(
    const control::EventsRequest& request) {
  EGRESS_ASSIGN_OR_RETURN(EventFilter filter, FilterOf(request));
  std::lock_guard<std::mutex> lock(mu_);
  FollowAnswer out;
  EGRESS_ASSIGN_OR_RETURN(out.first.warning,
                          TargetWarningLocked(filter.target));
  // Like tail -f: no backlog unless asked for (--last N).
  EGRESS_ASSIGN_OR_RETURN(
      EventPipeline::FollowStart start,
      pipeline_->StartFollow(filter, request.last.value_or(0),
                             FormatOf(request)));
  out.first.lines = std::move(start.backlog);
  out.follower = start.follower;
  return out;
}

void RecordHub::Follow(uint64_t follower, UniqueFd fd) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status st = pipeline_->AttachFollower(follower, std::move(fd));
  if (!st.ok()) {
    fprintf(stderr, "egressd: events follower: %s\n", st.ToString().c_str());
  }
}

uint64_t RecordHub::records_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pipeline_->records_read();
}
uint64_t RecordHub::records_dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pipeline_->records_dropped();
}
uint64_t RecordHub::sink_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pipeline_->sink_errors();
}

}  // namespace egress
