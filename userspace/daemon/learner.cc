#include "userspace/daemon/learner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/status_macros.h"
#include "userspace/events/event_json.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/suggest.h"

namespace egress {

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

policy::PolicyTarget PolicyTargetOf(const TargetState& t) {
  policy::PolicyTarget out;
  if (t.source == policy::TargetSource::kUnit) {
    out.kind = policy::TargetSource::kUnit;
    out.value = t.source_value;
  } else if (t.source == policy::TargetSource::kUser) {
    // As given: a name stays a name (the uid may differ on another host).
    out.kind = policy::TargetSource::kUser;
    out.value = t.source_value;
  } else if (t.source == policy::TargetSource::kPattern) {
    out.kind = policy::TargetSource::kPattern;
    out.value = t.cgroup;
  } else {
    // cgroup, and pid (a pid does not outlive its process; its cgroup does).
    out.kind = policy::TargetSource::kCgroup;
    out.value = t.cgroup;
  }
  return out;
}

void Learner::Forget(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  store_.Forget(target);
}

absl::Status Learner::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  auto store = LearnStore::Load(path_);
  if (store.ok()) {
    store_ = *std::move(store);
    return absl::OkStatus();
  }
  if (!absl::IsDataLoss(store.status())) return store.status();
  // Learned traffic is not policy: keep enforcing, keep the bad file for
  // the operator, and say so loudly.
  std::string aside =
      absl::StrCat(path_, ".corrupt-", absl::ToUnixSeconds(absl::Now()));
  rename(path_.c_str(), aside.c_str());
  fprintf(stderr,
          "egressd: %s; moved it to %s and started learning afresh (the "
          "enforced policy is not affected)\n",
          std::string(store.status().message()).c_str(), aside.c_str());
  return absl::OkStatus();
}

std::optional<std::string> Learner::TakeChanges() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!store_.dirty()) return std::nullopt;
  store_.clear_dirty();
  return policy::JsonText(store_.ToJson(), 2) + "\n";
}

void Learner::Learn(const egress_event& e, const std::string& target,
                    policy::LoggingLevel logging, int64_t realtime_offset_ns) {
  if (target.empty()) return;
  // What the target initiated and was (or would have been) let through.
  bool verdict_record = e.kind == EGRESS_EVENT_VERDICT &&
                        (e.verdict == EGRESS_VERDICT_AUDIT ||
                         e.verdict == EGRESS_VERDICT_ALLOW) &&
                        e.hook != EGRESS_HOOK_SOCK_CREATE &&
                        e.hook != EGRESS_HOOK_SETSOCKOPT;
  // A flow adds what no verdict record showed: connections a rule allowed
  // while allow records are off. (In audit mode the connect already left an
  // audit record, and its flow is "unexplained": counted once.)
  bool outbound_flow = e.kind == EGRESS_EVENT_FLOW_ESTABLISHED &&
                       e.direction == EGRESS_DIR_OUTBOUND &&
                       e.verdict == EGRESS_VERDICT_ALLOW &&
                       logging != policy::LoggingLevel::kAll;
  if (!verdict_record && !outbound_flow) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::array<uint8_t, 16> addr;
  memcpy(addr.data(), e.addr, 16);
  char comm[sizeof(e.comm) + 1] = {};
  memcpy(comm, e.comm, sizeof(e.comm));
  if (e.family == EGRESS_FAMILY_UNIX) {
    // An address shown with '?' (bytes a rule cannot name) is not kept.
    const std::string path = UnixPathText(e);
    if (path.find('?') != std::string::npos) return;
    store_.RecordUnix(target, path, uint64_t{e.suppressed} + 1,
                      static_cast<int64_t>(e.ts_ns) + realtime_offset_ns, comm);
    return;
  }
  store_.Record(target, e.family, addr, e.proto, ntohs(e.port),
                uint64_t{e.suppressed} + 1,
                static_cast<int64_t>(e.ts_ns) + realtime_offset_ns, comm);
}

absl::StatusOr<control::SuggestResponse> Learner::Suggest(
    const TargetState& t, const control::SuggestRequest& req,
    const std::string& node_name) const {
  int64_t since_ns = 0;
  std::string since_text = "the start of learning";
  if (req.since_seconds) {
    if (*req.since_seconds < 0 || *req.since_seconds > int64_t{3650} * 86400) {
      return absl::InvalidArgumentError(
          "since_seconds must be a number of seconds up to 3650 days");
    }
    since_ns = absl::GetCurrentTimeNanos() - *req.since_seconds * 1'000'000'000;
    since_text = Rfc3339(since_ns / 1'000'000'000);
  }
  policy::SuggestOptions opts;
  opts.name = t.name;
  opts.target = PolicyTargetOf(t);
  opts.group_v4 = req.group_v4;
  opts.group_v6 = req.group_v6;
  // Records that could not be told apart are not evidence of anything.
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<policy::Observation> seen;
  for (policy::Observation& o : store_.Query(t.name, since_ns)) {
    if (!o.unix_path.empty()) {
      seen.push_back(std::move(o));
      continue;
    }
    bool ported = o.ip_proto == IPPROTO_TCP || o.ip_proto == IPPROTO_UDP;
    if (ported && o.port == 0) continue;
    if (!ported && o.ip_proto != IPPROTO_ICMP && o.ip_proto != IPPROTO_ICMPV6)
      continue;
    seen.push_back(std::move(o));
  }
  opts.header_comment.push_back(
      absl::StrCat("Learned by egressd on ", node_name, " from what target ",
                   t.name, " initiated since ", since_text, " (mode ",
                   policy::ModeName(t.mode), " when suggested)."));
  if (uint64_t lost = store_.overflow(t.name); lost > 0) {
    opts.header_comment.push_back(absl::StrCat(
        "WARNING: ", lost,
        " attempts to further destinations were not kept (table full); "
        "review before enforcing."));
  }
  EGRESS_ASSIGN_OR_RETURN(std::string yaml, policy::SuggestPolicy(seen, opts));
  return control::SuggestResponse{t.name, seen.size(), yaml};
}

}  // namespace egress
