#include "userspace/daemon/dns_sweeper.h"

#include "userspace/common/status_macros.h"

namespace egress {

control::TargetDns TargetDnsOf(const egress_dns_counters& c,
                               const DnsSweep::Target& b) {
  control::TargetDns d;
  d.queries = c.queries;
  d.answers = c.answers;
  d.answers_matched = c.answers_matched;
  d.answers_empty = c.answers_empty;
  d.bindings_learned = c.bindings;
  d.ignored_malformed = c.ignored_malformed;
  d.ignored_no_query = c.ignored_no_query;
  d.ignored_resolver = c.ignored_resolver;
  d.ignored_no_rule = c.ignored_no_rule;
  d.refused_full = c.full;
  d.ignored_stream = c.ignored_stream;
  d.resolver_source_refused = c.resolver_source;
  d.queries_over_rate = c.queries_over_rate;
  d.bindings_live = b.live;
  d.bindings_expired = b.expired;
  d.bindings_swept = b.swept;
  return d;
}

absl::Status DnsSweeper::Sweep() {
  EGRESS_ASSIGN_OR_RETURN(DnsSweep found, kernel_.SweepDnsBindings());
  std::lock_guard<std::mutex> lock(mu_);
  // Live and expired are what this sweep saw; a target it found nothing of
  // has none.
  for (auto& [id, t] : targets_) t.live = t.expired = 0;
  for (const auto& [id, f] : found.targets) {
    DnsSweep::Target& t = targets_[id];
    t.live = f.live;
    t.expired = f.expired;
    t.swept += f.swept;
    t.restored += f.restored;
  }
  return absl::OkStatus();
}

std::map<uint32_t, DnsSweep::Target> DnsSweeper::Targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

DnsSweep::Target DnsSweeper::Of(uint32_t target_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = targets_.find(target_id);
  return it == targets_.end() ? DnsSweep::Target{} : it->second;
}

}  // namespace egress
