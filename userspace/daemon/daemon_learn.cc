// The operator's workflow around the enforced policy: learning what targets
// initiate (from audit and allow records), proposing a policy from it
// (`egressctl suggest`) and writing the enforced policy back as files
// (`egressctl export`). Part of Daemon; runs on its loop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/daemon.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/suggest.h"

namespace egress {
namespace {

using nlohmann::json;

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

// A target as a policy file names it.
policy::PolicyTarget PolicyTargetOf(const TargetState& t) {
  policy::PolicyTarget out;
  if (t.source_kind == "unit") {
    out.kind = policy::TargetSource::kUnit;
    out.value = t.source;
  } else if (t.source_kind == "pattern") {
    out.kind = policy::TargetSource::kPattern;
    out.value = t.cgroup;
  } else {
    // cgroup, and pid (a pid does not outlive its process; its cgroup does).
    out.kind = policy::TargetSource::kCgroup;
    out.value = t.cgroup;
  }
  return out;
}

}  // namespace

std::string Daemon::LearnPath() const {
  return absl::StrCat(options_.state_dir, "/learned.json");
}

absl::Status Daemon::LoadLearned() {
  auto store = LearnStore::Load(LearnPath());
  if (store.ok()) {
    learn_ = *std::move(store);
    return absl::OkStatus();
  }
  if (!absl::IsDataLoss(store.status())) return store.status();
  // Learned traffic is not policy: keep enforcing, keep the bad file for
  // the operator, and say so loudly.
  std::string aside =
      absl::StrCat(LearnPath(), ".corrupt-", absl::ToUnixSeconds(absl::Now()));
  rename(LearnPath().c_str(), aside.c_str());
  fprintf(stderr,
          "egressd: %s; moved it to %s and started learning afresh (the "
          "enforced policy is not affected)\n",
          std::string(store.status().message()).c_str(), aside.c_str());
  return absl::OkStatus();
}

void Daemon::SaveLearned() {
  if (!learn_.dirty()) return;
  if (absl::Status st = learn_.Save(LearnPath()); !st.ok()) {
    fprintf(stderr, "egressd: saving learned traffic: %s\n",
            st.ToString().c_str());
    return;
  }
  learn_.clear_dirty();
}

void Daemon::Learn(const egress_event& e, const std::string& target) {
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
  auto it = state_.targets.find(target);
  bool outbound_flow = e.kind == EGRESS_EVENT_FLOW_ESTABLISHED &&
                       e.direction == EGRESS_DIR_OUTBOUND &&
                       e.verdict == EGRESS_VERDICT_ALLOW &&
                       it != state_.targets.end() && it->second.log != "all";
  if (!verdict_record && !outbound_flow) return;
  std::array<uint8_t, 16> addr;
  memcpy(addr.data(), e.addr, 16);
  char comm[sizeof(e.comm) + 1] = {};
  memcpy(comm, e.comm, sizeof(e.comm));
  learn_.Record(target, e.family, addr, e.proto, ntohs(e.port),
                uint64_t{e.suppressed} + 1,
                static_cast<int64_t>(e.ts_ns) + realtime_offset_ns_, comm);
}

absl::StatusOr<json> Daemon::Suggest(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
  int64_t since_ns = 0;
  std::string since_text = "the start of learning";
  if (req.contains("since_seconds")) {
    if (!req["since_seconds"].is_number_unsigned() ||
        req["since_seconds"].get<uint64_t>() > uint64_t{3650} * 86400) {
      return absl::InvalidArgumentError(
          "since_seconds must be a number of seconds up to 3650 days");
    }
    int64_t now = absl::GetCurrentTimeNanos();
    since_ns = now - req["since_seconds"].get<int64_t>() * 1'000'000'000;
    since_text = Rfc3339(since_ns / 1'000'000'000);
  }
  policy::SuggestOptions opts;
  opts.name = t->name;
  opts.target = PolicyTargetOf(*t);
  opts.group_v4 = req.value("group_v4", 32);
  opts.group_v6 = req.value("group_v6", 128);
  // Records that could not be told apart are not evidence of anything.
  std::vector<policy::Observation> seen;
  for (policy::Observation& o : learn_.Query(t->name, since_ns)) {
    bool ported = o.ip_proto == IPPROTO_TCP || o.ip_proto == IPPROTO_UDP;
    if (ported && o.port == 0) continue;
    if (!ported && o.ip_proto != IPPROTO_ICMP && o.ip_proto != IPPROTO_ICMPV6)
      continue;
    seen.push_back(std::move(o));
  }
  opts.header_comment.push_back(
      absl::StrCat("Learned by egressd on ", node_name_, " from what target ",
                   t->name, " initiated since ", since_text, " (mode ",
                   ModeName(t->mode), " when suggested)."));
  if (uint64_t lost = learn_.overflow(t->name); lost > 0) {
    opts.header_comment.push_back(absl::StrCat(
        "WARNING: ", lost,
        " attempts to further destinations were not kept (table full); "
        "review before enforcing."));
  }
  EGRESS_ASSIGN_OR_RETURN(std::string yaml, policy::SuggestPolicy(seen, opts));
  return json{
      {"target", t->name}, {"observations", seen.size()}, {"yaml", yaml}};
}

absl::StatusOr<json> Daemon::Export(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<const TargetState*> targets,
                          SelectTargets(req));
  json files = json::array();
  for (const TargetState* t : targets) {
    policy::PolicyDocument doc;
    doc.name = t->name;
    doc.target = PolicyTargetOf(*t);
    doc.mode = policy::ModeFromKernel(t->mode);
    doc.logging = policy::ParseLoggingLevel(t->log).value_or(
        policy::LoggingLevel::kDenied);
    doc.header_comment.push_back(
        absl::StrCat("Exported by egressd on ", node_name_, " at ",
                     Rfc3339(absl::ToUnixSeconds(absl::Now())),
                     ": the policy enforced for target ", t->name, "."));
    doc.header_comment.push_back(
        "Apply with: egressctl apply -f FILE (unchanged rules keep their "
        "ids).");
    for (const policy::Rule& r : t->rules) {
      if (r.expires != 0) {
        // A file cannot say "until"; applying it would make the rule
        // permanent, so it is named here instead.
        doc.header_comment.push_back(
            absl::StrCat("Not exported, temporary until ", Rfc3339(r.expires),
                         ": ", policy::FormatRule(r)));
        continue;
      }
      doc.rules.push_back(r);
    }
    files.push_back({{"name", t->name},
                     {"file", absl::StrCat(t->name, ".yaml")},
                     {"yaml", policy::WritePolicy(doc)}});
  }
  return json{{"files", files}};
}

}  // namespace egress
