#include "userspace/daemon/metrics_source.h"

#include <bpf/libbpf_version.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "egress/version.h"
#include "userspace/daemon/dns_sweeper.h"
#include "userspace/daemon/workload_info.h"

namespace egress {
namespace {

void AddCounters(const std::string& name, const egress_counters& c,
                 MetricsSnapshot::Target& mt, MetricsSnapshot& m) {
  static const char* kKinds[] = {"allowed", "denied", "audit", "udp_reply"};
  static const char* kProtos[] = {"tcp", "udp", "icmp", "other", "unix"};
  mt.sockets_denied = c.sockets_denied;
  mt.source_routes_denied = c.srcroute_denied;
  mt.events_lost = c.events_lost;
  mt.events_suppressed = c.events_suppressed;
  mt.rule_hits_not_counted = c.rule_hits_not_counted;
  mt.flows_active = c.flows_opened - std::min(c.flows_opened, c.flows_closed);
  for (int k = 0; k < EGRESS_CTR_KINDS; ++k) {
    for (int p = 0; p < EGRESS_CTR_PROTOS; ++p) {
      m.verdicts.push_back({name, kKinds[k], kProtos[p], c.by_proto[k][p]});
    }
  }
}

}  // namespace

MetricsSnapshot CollectMetrics(const Engine& engine, KernelPort& kernel,
                               const DaemonCounters& counters,
                               const NodeView& node) {
  MetricsSnapshot m;
  // One look at the targets: their series and their containers' agree.
  const std::vector<control::TargetInfo> targets = engine.TargetInfos();
  std::vector<uint32_t> ids;
  for (const control::TargetInfo& t : targets) ids.push_back(t.id);
  // One look at udp_peers for every target (at most every few seconds).
  absl::StatusOr<UdpPeerReport> peers = kernel.UdpPeers(ids);
  if (peers.ok()) m.udp_peers_evicted = peers->evicted_total;
  for (const control::TargetInfo& t : targets) {
    MetricsSnapshot::Target mt;
    mt.name = t.name;
    mt.mode = policy::ModeName(t.mode);
    mt.rules = t.rules;
    mt.hooks_attached = t.hooks_attached;
    mt.hooks_total = t.hooks_total;
    mt.degraded = !t.degraded.empty();
    if (auto c = kernel.Counters(t.id); c.ok()) AddCounters(t.name, *c, mt, m);
    if (peers.ok()) {
      const PeerTally& p = peers->targets[t.id];
      mt.udp_peers_recorded = p.recorded;
      mt.udp_peers_not_recorded = p.not_recorded;
      mt.udp_peers_live = p.live;
      mt.udp_peers_evicted = p.evicted;
    }
    if (t.name_rules > 0) {
      mt.names = true;
      auto d = kernel.DnsCounters(t.id);
      auto b = counters.dns_bindings.find(t.id);
      mt.dns = TargetDnsOf(
          d.ok() ? *d : egress_dns_counters{},
          b == counters.dns_bindings.end() ? DnsSweep::Target{} : b->second);
    }
    if (auto hits = kernel.RuleHits(t.id); hits.ok()) {
      // A deleted rule's hits stay in the kernel map; its series must not.
      engine.EraseGoneRules(t.id, *hits);
      for (const auto& [rule_id, n] : *hits) {
        m.rule_hits.push_back({t.name, rule_id, n});
      }
    }
    m.targets.push_back(std::move(mt));
  }
  // Only the targets that select containers count (IsWorkloadSource).
  WorkloadSeries workloads = WorkloadSeriesOf(targets, node.running);
  m.workloads = std::move(workloads.series);
  m.workloads_omitted = workloads.omitted;
  m.node = node.node_name;
  m.events_read = counters.events_read;
  m.events_dropped = counters.events_dropped;
  m.events_sink_errors = counters.events_sink_errors;
  m.last_reload_ok = counters.last_reload_ok;
  m.shared_program_set_loaded = counters.shared_program_set_loaded;
  m.self_check_failures = engine.SelfCheckFailures();
  m.version = EGRESS_VERSION_STRING;
  m.libbpf_version =
      absl::StrCat(LIBBPF_MAJOR_VERSION, ".", LIBBPF_MINOR_VERSION);
  return m;
}

}  // namespace egress
