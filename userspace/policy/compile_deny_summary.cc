#include "userspace/policy/compile_deny_summary.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/container/flat_hash_map.h"

namespace egress::policy {
namespace {

struct Summary {
  uint16_t v4 = 0;
  bool v6 = false;

  void Add(const Summary& o) {
    v4 |= o.v4;
    v6 = v6 || o.v6;
  }
};

// Index of a tcp/udp protocol, -1 for any other.
int ProtoIndex(uint8_t proto) {
  return proto == IPPROTO_TCP ? 0 : proto == IPPROTO_UDP ? 1 : -1;
}

// The octets an IPv4 deny entry of `k` covers, as v4_deny_octets bits.
uint16_t OctetBits(const egress_rule_key& k) {
  const uint32_t len = k.prefixlen - EGRESS_RULE_KEY_FIXED_BITS;
  if (len < 4) return 0xffff;  // 16 octets or more: every bit
  const uint32_t count = len >= 8 ? 1u : 1u << (8 - len);
  uint16_t bits = 0;
  for (uint32_t i = 0; i < count; ++i) {
    bits |= DenyOctetBit(static_cast<uint8_t>(k.addr[0] + i));
  }
  return bits;
}

struct ProtoDenies {
  absl::flat_hash_map<uint16_t, Summary> by_class;  // ANY included
  Summary all;                                      // every class

  // What an entry of `port_class` must assume: its class and ANY; for ANY
  // itself, every class (the port's own class is probed first).
  Summary For(uint16_t port_class) const {
    if (port_class == EGRESS_PORT_CLASS_ANY) return all;
    Summary s;
    if (auto it = by_class.find(port_class); it != by_class.end()) {
      s.Add(it->second);
    }
    if (auto it = by_class.find(EGRESS_PORT_CLASS_ANY); it != by_class.end()) {
      s.Add(it->second);
    }
    return s;
  }
};

void Write(const Summary& s, egress_rule_value* v) {
  v->flags = EGRESS_RULE_F_DENY_SUMMARY | (s.v6 ? EGRESS_RULE_F_V6_DENY : 0);
  v->v4_deny_octets = s.v4;
}

}  // namespace

void SummarizeDenies(CompiledRuleset* compiled) {
  ProtoDenies denies[2];
  for (const auto& [k, v] : compiled->rules) {
    const int p = ProtoIndex(k.proto);
    if (p < 0 || v.verdict == EGRESS_VERDICT_ALLOW ||
        (k.family != EGRESS_FAMILY_IPV4 && k.family != EGRESS_FAMILY_IPV6)) {
      continue;
    }
    Summary s;
    if (k.family == EGRESS_FAMILY_IPV4) {
      s.v4 = OctetBits(k);
    } else {
      s.v6 = true;
    }
    denies[p].by_class[ntohs(k.port_class)].Add(s);
    denies[p].all.Add(s);
  }
  for (auto& [k, v] : compiled->rules) {
    const int p = ProtoIndex(k.proto);
    if (k.family != EGRESS_FAMILY_NAME || p < 0) continue;
    Write(denies[p].For(ntohs(k.port_class)), &v);
  }
  for (auto& [k, v] : compiled->exact) {
    const int p = ProtoIndex(k.proto);
    if (k.family != EGRESS_FAMILY_NAME || p < 0) continue;
    // An exact entry came from the class of its port (compile_exact.h).
    uint16_t port_class = EGRESS_PORT_CLASS_ANY;
    const uint16_t port = ntohs(k.port);
    for (const compile_internal::ClassSpan& c : compiled->classes) {
      if (c.proto == k.proto && c.lo <= port && port <= c.hi) {
        port_class = c.port_class;
        break;
      }
    }
    Write(denies[p].For(port_class), &v);
  }
}

}  // namespace egress::policy
