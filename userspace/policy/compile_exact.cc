#include "userspace/policy/compile_exact.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace egress::policy::compile_internal {
namespace {

// A whole IPv4 or IPv6 address, or a name pattern (EGRESS_FAMILY_NAME,
// always at full length: the pattern's 8 bytes then zeros), of a tcp/udp
// port class (not ANY): the entries a hash key can stand for. rules.h
// probes the hash with the destination's address, names.h with each
// pattern the address was learned for.
bool WholeAddress(const egress_rule_key& k) {
  if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP) return false;
  if (ntohs(k.port_class) == EGRESS_PORT_CLASS_ANY) return false;
  if (k.family == EGRESS_FAMILY_IPV4) {
    return k.prefixlen == EGRESS_RULE_KEY_FIXED_BITS + 32;
  }
  if (k.family == EGRESS_FAMILY_IPV6 || k.family == EGRESS_FAMILY_NAME) {
    return k.prefixlen == EGRESS_RULE_KEY_FIXED_BITS + 128;
  }
  return false;
}

}  // namespace

void ExactClasses::Add(int proto, uint16_t port_class, uint32_t lo,
                       uint32_t hi) {
  if (hi - lo + 1 > EGRESS_EXACT_CLASS_PORTS) return;
  small[proto][port_class] = {static_cast<uint16_t>(lo),
                              static_cast<uint16_t>(hi)};
}

egress_exact_key ExactKey(uint32_t ruleset, uint8_t proto, uint8_t family,
                          uint16_t port, const uint8_t addr[16]) {
  egress_exact_key k{};
  k.ruleset = ruleset;
  k.proto = proto;
  k.family = family;
  k.port = htons(port);
  std::memcpy(k.addr, addr, sizeof(k.addr));
  return k;
}

std::vector<std::pair<egress_port_key, egress_port_value>> NamedClassEntries(
    uint32_t ruleset, const std::vector<ClassSpan>& spans,
    const std::vector<std::pair<egress_rule_key, egress_rule_value>>& rules) {
  // Classes are numbered 1..0xfffe per protocol.
  std::vector<bool> named[2] = {std::vector<bool>(EGRESS_PORT_CLASS_ANY + 1),
                                std::vector<bool>(EGRESS_PORT_CLASS_ANY + 1)};
  for (const auto& [k, v] : rules) {
    if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP) continue;
    named[k.proto == IPPROTO_TCP ? 0 : 1][ntohs(k.port_class)] = true;
  }
  std::vector<std::pair<egress_port_key, egress_port_value>> out;
  for (const ClassSpan& c : spans) {
    if (!named[c.proto == IPPROTO_TCP ? 0 : 1][c.port_class]) continue;
    // The minimal aligned prefixes covering [lo, hi].
    uint32_t a = c.lo;
    const uint32_t b = c.hi;
    while (a <= b) {
      int k = a == 0 ? 16 : std::min(16, __builtin_ctz(a));
      while (a + (1u << k) - 1 > b) --k;
      egress_port_key key{};
      key.prefixlen = EGRESS_PORT_KEY_FIXED_BITS + 16 - k;
      key.ruleset = ruleset;
      key.proto = c.proto;
      key.port = htons(static_cast<uint16_t>(a));
      egress_port_value value{};
      value.port_class = c.port_class;
      out.emplace_back(key, value);
      a += 1u << k;
    }
  }
  return out;
}

void MoveExact(
    const ExactClasses& classes, size_t limit,
    std::vector<std::pair<egress_rule_key, egress_rule_value>>* rules,
    std::vector<std::pair<egress_exact_key, egress_rule_value>>* exact) {
  if (classes.small[0].empty() && classes.small[1].empty()) return;
  size_t kept = 0;
  for (size_t i = 0; i < rules->size(); ++i) {
    const auto& [k, v] = (*rules)[i];
    bool moved = false;
    if (WholeAddress(k)) {
      const int p = k.proto == IPPROTO_TCP ? 0 : 1;
      auto it = classes.small[p].find(ntohs(k.port_class));
      if (it != classes.small[p].end()) {
        const auto [lo, hi] = it->second;
        if (exact->size() + (hi - lo + 1u) <= limit) {
          for (uint32_t port = lo; port <= hi; ++port) {
            exact->emplace_back(ExactKey(k.ruleset, k.proto, k.family,
                                         static_cast<uint16_t>(port), k.addr),
                                v);
          }
          moved = true;
        }
      }
    }
    if (!moved) {
      if (kept != i) (*rules)[kept] = (*rules)[i];
      ++kept;
    }
  }
  rules->resize(kept);
}

}  // namespace egress::policy::compile_internal
