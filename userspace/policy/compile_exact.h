// The exact_rules part of a compiled rule set (abi.h), and the port_classes
// entries the tries still need.
//
// Exact entries: rules entries of a
// whole address (/32, /128) in a tcp/udp port class of at most
// EGRESS_EXACT_CLASS_PORTS ports leave the trie for one hash key per port.
// The BPF program probes the hash first; a hit is the entry the tries would
// have answered with (nothing in a trie is longer than a whole address, so
// the entry of the port's own class is the longest match there), a miss
// goes on to the tries, whose answer for every other destination is as
// before since only the moved entries left them.
//
// Name entries (family EGRESS_FAMILY_NAME, always at full length) move
// the same way, under the same limit: the key's address is the pattern id's
// 8 bytes then zeros. bpf/lib/names.h probes the hash with each pattern an
// address was learned for before the tries. Name entries of a port range or
// of every port stay in the trie, like those of addresses.
//
// Why: an allow-list learned from traffic is mostly one host and one port
// per rule, and a name rule mostly one name and one port. For those a
// connect costs one hash probe instead of a probe of the port trie and of
// the rules trie (each a walk of up to 150 nodes at 100,000 rules), and a
// hash takes a whole set in a few batched writes where a trie takes one
// system call per entry.
//
// Port classes: only the classes some rules entry still names go into
// port_classes. A port of another class finds none there and is probed
// with ANY alone, which is what it would find: no entry of its class is
// left in the trie. An allow-list of one host and port per rule needs no
// port_classes entry at all.
#ifndef EGRESS_USERSPACE_POLICY_COMPILE_EXACT_H_
#define EGRESS_USERSPACE_POLICY_COMPILE_EXACT_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "egress/abi.h"

namespace egress::policy::compile_internal {

// The port classes small enough to move, per protocol (0 tcp, 1 udp): class
// -> its first and last port.
struct ExactClasses {
  absl::flat_hash_map<uint16_t, std::pair<uint16_t, uint16_t>> small[2];

  // Records class `port_class` of protocol index `proto` covering [lo, hi]
  // if it is small enough.
  void Add(int proto, uint16_t port_class, uint32_t lo, uint32_t hi);
};

// Moves the entries of `rules` that ExactClasses allows into `exact`
// (appended, one key per port, in the order of `rules`), as long as `exact`
// stays within `limit` entries. Entries that stay keep their order.
void MoveExact(
    const ExactClasses& classes, size_t limit,
    std::vector<std::pair<egress_rule_key, egress_rule_value>>* rules,
    std::vector<std::pair<egress_exact_key, egress_rule_value>>* exact);

// Every port class of a rule set, tcp then udp, in port order (all of
// them, whether the tries name them or not: a recompile needs their spans).
struct ClassSpan {
  uint8_t proto;  // IPPROTO_TCP / IPPROTO_UDP
  uint16_t port_class;
  uint16_t lo, hi;
};

// The port_classes entries of the classes `rules` names (tcp/udp entries
// of a class other than ANY), in the order of `spans`.
std::vector<std::pair<egress_port_key, egress_port_value>> NamedClassEntries(
    uint32_t ruleset, const std::vector<ClassSpan>& spans,
    const std::vector<std::pair<egress_rule_key, egress_rule_value>>& rules);

// The exact_rules key of a destination (port in host order).
egress_exact_key ExactKey(uint32_t ruleset, uint8_t proto, uint8_t family,
                          uint16_t port, const uint8_t addr[16]);

}  // namespace egress::policy::compile_internal

#endif  // EGRESS_USERSPACE_POLICY_COMPILE_EXACT_H_
