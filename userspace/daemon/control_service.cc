#include "userspace/daemon/control_service.h"

#include <errno.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"
#include "userspace/daemon/nonlocal_bind.h"
#include "userspace/daemon/ptrace_scope.h"
#include "userspace/daemon/raw_capability.h"
#include "userspace/daemon/resolver_check.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

using control::Request;
using control::Response;

// CAP_NET_RAW checks read /proc: bounded work per status.
constexpr size_t kMaxCgroupsChecked = 16;
constexpr size_t kMaxProcessesChecked = 4096;

// Which kernel counter each counter of `status` shows.
constexpr struct {
  uint64_t control::TargetCounters::*shown;
  __u64 egress_counters::*kernel;
} kCounterFields[] = {
    {&control::TargetCounters::allowed, &egress_counters::allowed},
    {&control::TargetCounters::denied, &egress_counters::denied},
    {&control::TargetCounters::audited, &egress_counters::audited},
    {&control::TargetCounters::udp_replies, &egress_counters::replies},
    {&control::TargetCounters::sockets_denied,
     &egress_counters::sockets_denied},
    {&control::TargetCounters::source_route_denied,
     &egress_counters::srcroute_denied},
    {&control::TargetCounters::events_lost, &egress_counters::events_lost},
    {&control::TargetCounters::events_suppressed,
     &egress_counters::events_suppressed},
    {&control::TargetCounters::flows_opened, &egress_counters::flows_opened},
    {&control::TargetCounters::flows_closed, &egress_counters::flows_closed},
    {&control::TargetCounters::flows_unexplained,
     &egress_counters::flows_unexplained},
    {&control::TargetCounters::udp_peers_recorded,
     &egress_counters::peers_recorded},
    {&control::TargetCounters::udp_peers_not_recorded,
     &egress_counters::peers_not_recorded},
    {&control::TargetCounters::rule_hits_not_counted,
     &egress_counters::rule_hits_not_counted},
};

control::TargetCounters CountersOf(const egress_counters& c) {
  control::TargetCounters out;
  for (const auto& f : kCounterFields) out.*f.shown = c.*f.kernel;
  return out;
}

}  // namespace

ControlService::ControlService(Engine& engine, KernelPort& kernel,
                               Learner& learner, RecordSource& records,
                               ServiceOptions options)
    : engine_(engine),
      kernel_(kernel),
      learner_(learner),
      records_(records),
      options_(std::move(options)) {}

bool ControlService::IsChange(const Request& request) {
  if (auto* r = std::get_if<control::ConnectionsRequest>(&request)) {
    return r->cut;
  }
  return std::holds_alternative<control::TargetAddRequest>(request) ||
         std::holds_alternative<control::TargetRemoveRequest>(request) ||
         std::holds_alternative<control::ModeRequest>(request) ||
         std::holds_alternative<control::LoggingRequest>(request) ||
         std::holds_alternative<control::RuleAddRequest>(request) ||
         std::holds_alternative<control::RuleDeleteRequest>(request) ||
         std::holds_alternative<control::ApplyRequest>(request) ||
         std::holds_alternative<control::ReloadRequest>(request);
}

absl::StatusOr<Response> ControlService::Change(Request request) {
  const int64_t now = options_.now();
  if (auto* r = std::get_if<control::TargetAddRequest>(&request)) {
    EGRESS_ASSIGN_OR_RETURN(control::TargetAddResponse out,
                            engine_.AddTarget(r->spec));
    out.existing = LookAfterChange({out.target.name}, r->cut);
    return out;
  }
  if (auto* r = std::get_if<control::RuleAddRequest>(&request)) {
    EGRESS_ASSIGN_OR_RETURN(control::RuleAddResponse out,
                            engine_.AddRule(*r, now));
    if (!r->dry_run) out.existing = LookAfterChange({out.target}, r->cut);
    out.dry_run = r->dry_run;
    out.policy_file = PolicyFileOf(out.target);
    return out;
  }
  if (auto* r = std::get_if<control::RuleDeleteRequest>(&request)) {
    EGRESS_ASSIGN_OR_RETURN(control::RuleDeleteResponse out,
                            engine_.DeleteRule(*r));
    if (!r->dry_run) out.existing = LookAfterChange({out.target}, r->cut);
    out.dry_run = r->dry_run;
    out.policy_file = PolicyFileOf(out.target);
    return out;
  }
  if (auto* r = std::get_if<control::ModeRequest>(&request)) {
    EGRESS_ASSIGN_OR_RETURN(control::ModeResponse out, engine_.SetMode(*r));
    if (r->mode != policy::Mode::kEnforce) return out;  // audit loosens
    std::vector<std::string> targets;
    for (const control::ModeChange& c : out.changed) {
      targets.push_back(c.target);
    }
    out.existing = LookAfterChange(targets, r->cut);
    return out;
  }
  return ApplyAndLook(std::get<control::ApplyRequest>(std::move(request)));
}

absl::StatusOr<Response> ControlService::Handle(Request request) {
  if (std::holds_alternative<control::TargetAddRequest>(request) ||
      std::holds_alternative<control::RuleAddRequest>(request) ||
      std::holds_alternative<control::RuleDeleteRequest>(request) ||
      std::holds_alternative<control::ModeRequest>(request) ||
      std::holds_alternative<control::ApplyRequest>(request)) {
    return Change(std::move(request));
  }
  if (auto* r = std::get_if<control::TargetRemoveRequest>(&request)) {
    EGRESS_ASSIGN_OR_RETURN(auto out, engine_.RemoveTarget(r->name));
    learner_.Forget(r->name);
    return out;
  }
  if (std::holds_alternative<control::TargetListRequest>(request)) {
    std::vector<control::TargetInfo> infos = engine_.TargetInfos();
    for (control::TargetInfo& t : infos) NameWorkloads(&t);
    return control::TargetListResponse{std::move(infos)};
  }

  if (auto* r = std::get_if<control::LoggingRequest>(&request)) {
    return engine_.SetLogging(*r);
  }
  if (auto* r = std::get_if<control::ListRequest>(&request)) {
    return engine_.List(r->target);
  }
  if (std::holds_alternative<control::StatusRequest>(request)) return Status();
  if (std::holds_alternative<control::ReloadRequest>(request)) return Reload();
  if (auto* r = std::get_if<control::SuggestRequest>(&request)) {
    return Suggest(*r);
  }
  if (auto* r = std::get_if<control::ExportRequest>(&request)) {
    return Export(r->target);
  }
  if (auto* r = std::get_if<control::EventsRequest>(&request)) {
    return records_.Recent(*r);
  }
  if (auto* r = std::get_if<control::ConnectionsRequest>(&request)) {
    return Connections(*r);
  }
  return control::PingResponse{};
}

std::string ControlService::PolicyFileOf(const std::string& target) const {
  std::lock_guard<std::mutex> lock(policy_dir_mu_);
  auto it = policy_dir_files_.find(target);
  return it == policy_dir_files_.end() ? "" : it->second;
}

absl::StatusOr<control::ApplyResponse> ControlService::ApplyAndLook(
    control::ApplyRequest request) {
  const bool cut = request.cut;
  EGRESS_ASSIGN_OR_RETURN(control::ApplyResponse out,
                          engine_.Apply(std::move(request), options_.now()));
  if (out.dry_run) return out;
  std::vector<std::string> targets;
  for (const control::TargetChange& c : out.changes) {
    targets.push_back(c.target);
  }
  out.existing = LookAfterChange(targets, cut);
  return out;
}

absl::StatusOr<control::ConnectionsResponse> ControlService::Connections(
    const control::ConnectionsRequest& request) {
  if (options_.connections == nullptr) {
    return absl::UnavailableError(
        "connections: this egressd does not look at sockets");
  }
  return options_.connections->Look(request.target, {.cut = request.cut});
}

std::vector<control::Connection> ControlService::LookAfterChange(
    const std::vector<std::string>& targets, bool cut) {
  if (options_.connections == nullptr || targets.empty()) return {};
  absl::StatusOr<control::ConnectionsResponse> found =
      options_.connections->AfterChange(targets, cut);
  if (!found.ok()) {
    if (options_.log) {
      options_.log(absl::StrCat("existing connections not looked at: ",
                                found.status().ToString()));
    }
    return {};
  }
  std::vector<control::Connection> out;
  for (control::Connection& c : found->connections) {
    if (!c.allowed) out.push_back(std::move(c));
  }
  return out;
}

void ControlService::NameWorkloads(control::TargetInfo* t) const {
  if (policy::IsWorkloadSource(t->source) && options_.name_workloads) {
    options_.name_workloads(&t->cgroups);
  }
}

std::vector<std::string> ControlService::Warnings(
    const control::TargetInfo& t) const {
  std::vector<std::string> warnings;
  if (t.orphan) {
    warnings.push_back(absl::StrCat(
        "orphan: found pinned without state; its rules are unknown and stay "
        "enforced; 'egressctl target remove ",
        t.name, "' lifts it"));
  }
  const bool workload = policy::IsWorkloadSource(t.source);
  const bool pods = t.source == policy::TargetSource::kPod ||
                    t.source == policy::TargetSource::kPodSelector;
  if (workload && options_.workload_warnings) {
    for (std::string& w : options_.workload_warnings(t)) {
      warnings.push_back(std::move(w));
    }
  }
  if (!t.cgroup_exists) {
    warnings.push_back(
        workload
            ? absl::StrCat("no running ", pods ? "pod" : "container", " is ",
                           policy::TargetSourceName(t.source), " ",
                           t.source_value, ": each is enforced once it starts")
        : t.source == policy::TargetSource::kPattern
            ? absl::StrCat("no cgroup matches ", t.cgroup,
                           " yet: each is enforced once created")
            : absl::StrCat("cgroup ", t.cgroup,
                           " does not exist: enforced once created"));
  } else if (!t.attached) {
    warnings.push_back("not all hooks are attached to the current cgroup");
  }
  if (options_.self_check_problem) {
    if (std::string why = options_.self_check_problem(t.id); !why.empty()) {
      warnings.push_back(
          absl::StrCat("self-check cannot probe this target: ", why));
    }
  }
  if (t.mode == policy::Mode::kEnforce) {
    if (std::string w = NonlocalBindWarningOf(kIpv6NonlocalBindPath);
        !w.empty()) {
      warnings.push_back(std::move(w));
    }
    // A user target decides by uid: a socket of that uid made anywhere is
    // the target's.
    if (t.source != policy::TargetSource::kUser) {
      if (std::string w = PtraceScopeWarningOf(kPtraceScopePath); !w.empty()) {
        warnings.push_back(std::move(w));
      }
    }
  }
  // A user target's processes can be anywhere: its cgroups entry is the
  // root its programs are attached to, not where they run.
  const size_t checked =
      t.source == policy::TargetSource::kUser ? 0 : kMaxCgroupsChecked;
  for (size_t i = 0; i < t.cgroups.size() && i < checked; ++i) {
    std::string abs = t.cgroups[i].path == "/"
                          ? options_.cgroup_root
                          : options_.cgroup_root + t.cgroups[i].path;
    for (std::string& w :
         RawCapabilityWarnings(abs, kMaxProcessesChecked,
                               pods       ? RawAdvice::kPod
                               : workload ? RawAdvice::kContainer
                                          : RawAdvice::kSystemd)) {
      warnings.push_back(std::move(w));
    }
  }
  return warnings;
}

void ControlService::SweepDnsBindings() {
  if (absl::Status st = dns_sweeper_.Sweep(); !st.ok() && options_.log) {
    options_.log(absl::StrCat("sweeping learned names: ", st.ToString()));
  }
}

control::TargetDns ControlService::DnsOf(
    const control::TargetInfo& t,
    const std::vector<policy::Rule>& rules) const {
  auto c = kernel_.DnsCounters(t.id);
  control::TargetDns d =
      TargetDnsOf(c.ok() ? *c : egress_dns_counters{}, dns_sweeper_.Of(t.id));
  // A user target's processes can be anywhere: not looked at.
  const size_t checked =
      t.source == policy::TargetSource::kUser ? 0 : kMaxCgroupsChecked;
  for (size_t i = 0; i < t.cgroups.size() && i < checked; ++i) {
    const std::string abs = t.cgroups[i].path == "/"
                                ? options_.cgroup_root
                                : options_.cgroup_root + t.cgroups[i].path;
    for (std::string& w :
         TargetResolverWarnings(abs, rules, kMaxProcessesChecked)) {
      d.resolver_warnings.push_back(std::move(w));
    }
  }
  return d;
}

absl::StatusOr<control::StatusResponse> ControlService::Status() {
  control::StatusResponse out;
  engine_.RefreshLinkHealth();
  std::vector<control::TargetInfo> infos = engine_.TargetInfos();
  // The learned addresses bound now, not at the last periodic sweep.
  if (std::any_of(infos.begin(), infos.end(),
                  [](const auto& t) { return t.name_rules > 0; })) {
    SweepDnsBindings();
  }
  std::vector<uint32_t> ids;
  for (const control::TargetInfo& t : infos) ids.push_back(t.id);
  // One look at udp_peers for every target (at most every few seconds).
  absl::StatusOr<UdpPeerReport> peers = kernel_.UdpPeers(ids);
  if (peers.ok()) out.udp_peers_evicted = peers->evicted_total;
  for (control::TargetInfo& t : infos) {
    if (auto c = kernel_.Counters(t.id); c.ok()) {
      t.counters = CountersOf(*c);
      if (peers.ok()) {
        // All four from the one look, so that they add up.
        const PeerTally& p = peers->targets[t.id];
        t.counters->udp_peers_recorded = p.recorded;
        t.counters->udp_peers_not_recorded = p.not_recorded;
        t.counters->udp_peers_live = p.live;
        t.counters->udp_peers_evicted = p.evicted;
      }
    }
    t.warnings = Warnings(t);
    t.policy_file = PolicyFileOf(t.name);
    NameWorkloads(&t);
    if (t.name_rules > 0) {
      auto state = engine_.Targets(t.name, /*all=*/false);
      if (state.ok() && !state->empty()) {
        t.dns = DnsOf(t, state->front().rules);
        for (const std::string& w : t.dns->resolver_warnings) {
          t.warnings.push_back(absl::StrCat("names cannot be learned: ", w));
        }
      }
    }
    out.targets.push_back(std::move(t));
  }
  out.metrics_port = options_.metrics_port();
  out.events_read = options_.events_read();
  out.events_dropped = options_.events_dropped();
  out.events_sink_errors = options_.events_sink_errors();
  out.bpffs = options_.bpffs_dir;
  out.cgroup_root = options_.cgroup_root;
  out.version = options_.version;
  out.policy_dir = options_.policy_dir;
  {
    std::lock_guard<std::mutex> lock(policy_dir_mu_);
    out.policy_dir_error = policy_dir_error_;
  }
  if (options_.state_error) out.state_error = options_.state_error();
  return out;
}

absl::StatusOr<control::ApplyResponse> ControlService::Reload() {
  std::map<std::string, std::string> files;  // target -> its file
  auto load = [&]() -> absl::StatusOr<control::ApplyResponse> {
    const std::string& dir = options_.policy_dir;
    if (dir.empty()) {
      return absl::FailedPreconditionError(
          "egressd runs without --policy_dir: nothing to reload");
    }
    control::ApplyResponse none;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 && errno == ENOENT) {
      none.note = absl::StrCat("policy directory ", dir, " does not exist");
      return none;
    }
    auto policies = policy::LoadPolicies(dir);
    if (!policies.ok()) {
      if (!absl::StrContains(policies.status().message(), "no *.yaml")) {
        return policies.status();
      }
      none.note = std::string(policies.status().message());
      return none;
    }
    control::ApplyRequest request;
    for (const policy::Policy& p : *policies) {
      request.policies.push_back(control::SpecOfPolicy(p));
      files[request.policies.back().name] = request.policies.back().file;
    }
    return ApplyAndLook(std::move(request));
  };
  absl::StatusOr<control::ApplyResponse> result = load();
  last_reload_ok_.store(result.ok());
  std::lock_guard<std::mutex> lock(policy_dir_mu_);
  if (result.ok()) {
    policy_dir_files_ = std::move(files);
    policy_dir_error_.clear();
  } else {
    policy_dir_error_ = std::string(result.status().message());
  }
  return result;
}

absl::StatusOr<control::SuggestResponse> ControlService::Suggest(
    const control::SuggestRequest& request) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<TargetState> t,
                          engine_.Targets(request.target, /*all=*/false));
  return learner_.Suggest(t[0], request, options_.node_name);
}

absl::StatusOr<control::ExportResponse> ControlService::Export(
    const std::string& target) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<TargetState> targets,
                          engine_.Targets(target, /*all=*/true));
  control::ExportResponse out;
  for (const TargetState& t : targets) {
    policy::PolicyDocument doc;
    doc.name = t.name;
    doc.target = PolicyTargetOf(t);
    doc.mode = t.mode;
    doc.logging = t.logging;
    doc.annotations = t.annotations;
    doc.header_comment.push_back(
        absl::StrCat("Exported by egressd on ", options_.node_name, " at ",
                     Rfc3339(options_.now()),
                     ": the policy enforced for target ", t.name, "."));
    doc.header_comment.push_back(
        "Apply with: egressctl apply -f FILE (unchanged rules keep their "
        "ids).");
    for (const policy::Rule& r : t.rules) {
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
    out.files.push_back(
        {t.name, absl::StrCat(t.name, ".yaml"), policy::WritePolicy(doc)});
  }
  return out;
}

}  // namespace egress
