// Synthetic rule sets for egress_bench: many distinct /32 destinations in
// 10.0.0.0/8 with distinct ports, plus port ranges, /24 networks and deny
// rules, so that the LPM tries have a realistic shape. Rule 1 allows the
// benchmark's own loopback destinations; nothing else matches 127.0.0.0/8.
#ifndef EGRESS_BENCH_BENCH_RULES_H_
#define EGRESS_BENCH_BENCH_RULES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "userspace/policy/rule.h"

namespace egress::bench {

// Ports (host order) of the benchmark's loopback servers on 127.0.0.1.
struct AllowedPorts {
  uint16_t tcp_connect = 0;
  uint16_t tcp_bulk = 0;
  uint16_t udp_sink = 0;
};

// `n` rules (n >= 1) with ids 1..n. Rule 1 allows tcp/tcp_connect,
// tcp/tcp_bulk and udp/udp_sink to 127.0.0.1. The others, by id modulo 20:
//   0      deny tcp <single port> to a 10.x /32                      (5%)
//   1      allow tcp <one of 64 overlapping ranges in 1024-9279> to a
//          10.128-255.x.0/24                                          (5%)
//   2      deny tcp+udp any port to a 10.x.y.0/28 in 10.64-127        (5%)
//   3..6   allow udp <single port> to a 10.x /32                     (20%)
//   other  allow tcp <single port> to a 10.x /32                     (65%)
// Single ports are 10000 + (id * 7919) % 50000: distinct for the first 50,000
// ids. Destinations are distinct per id.
std::vector<policy::Rule> MakeRules(size_t n, const AllowedPorts& ports);

// --mode=names: MakeRules(n, ports), except that rule 1 no longer allows
// tcp/tcp_connect but allows udp/53 (the resolver) and udp/udp_echo on
// 127.0.0.1, and rule n + 1 allows tcp/tcp_connect to the name `name`: the
// connect is allowed only once a lookup of the name bound 127.0.0.1.
std::vector<policy::Rule> MakeNameRules(size_t n, const AllowedPorts& ports,
                                        uint16_t udp_echo,
                                        const std::string& name);

}  // namespace egress::bench

#endif  // EGRESS_BENCH_BENCH_RULES_H_
