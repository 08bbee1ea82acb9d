#include "bench/bench_rules.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace egress::bench {
namespace {

using policy::Action;
using policy::Cidr;
using policy::PortProto;
using policy::Proto;
using policy::Rule;

// a.b.c.d/prefix with the host bits cleared (the Cidr invariant).
Cidr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t prefix) {
  uint32_t v = (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) |
               uint32_t{d};
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  v &= mask;
  Cidr cidr;
  cidr.family = 4;
  cidr.addr = {};
  cidr.addr[0] = static_cast<uint8_t>(v >> 24);
  cidr.addr[1] = static_cast<uint8_t>(v >> 16);
  cidr.addr[2] = static_cast<uint8_t>(v >> 8);
  cidr.addr[3] = static_cast<uint8_t>(v);
  cidr.prefix_len = prefix;
  return cidr;
}

// A distinct host in 10.0.0.0/10 for every id below 2^22.
Cidr HostOf(uint32_t id) {
  return V4(10, static_cast<uint8_t>((id >> 16) & 0x3f),
            static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 32);
}

uint16_t SinglePort(uint32_t id) {
  return static_cast<uint16_t>(10000 + (uint64_t{id} * 7919) % 50000);
}

PortProto One(Proto proto, uint16_t port) {
  return PortProto{proto, port, port};
}

Rule MakeRule(uint32_t id, Action action, std::vector<PortProto> ports,
              Cidr dest) {
  Rule rule;
  rule.id = id;
  rule.action = action;
  const PortProto& p = ports.front();
  rule.spec =
      p.AllPorts() ? "any"
      : p.lo == p.hi
          ? absl::StrCat(p.lo, "/", policy::ProtoName(p.proto))
          : absl::StrCat(p.lo, "-", p.hi, "/", policy::ProtoName(p.proto));
  rule.ports.assign(ports.begin(), ports.end());
  rule.destinations = {dest};
  rule.comment = "egress_bench";
  return rule;
}

}  // namespace

std::vector<Rule> MakeRules(size_t n, const AllowedPorts& ports) {
  std::vector<Rule> rules;
  rules.reserve(n);
  Rule own = MakeRule(
      1, Action::kAllow,
      {One(Proto::kTcp, ports.tcp_connect), One(Proto::kTcp, ports.tcp_bulk),
       One(Proto::kUdp, ports.udp_sink)},
      V4(127, 0, 0, 1, 32));
  own.spec = "bench";
  rules.push_back(std::move(own));
  for (uint32_t id = 2; id <= n; ++id) {
    switch (id % 20) {
      case 0:
        rules.push_back(MakeRule(
            id, Action::kDeny, {One(Proto::kTcp, SinglePort(id))}, HostOf(id)));
        break;
      case 1: {
        uint16_t lo = static_cast<uint16_t>(1024 + (id % 64) * 128);
        rules.push_back(MakeRule(
            id, Action::kAllow,
            {PortProto{Proto::kTcp, lo, static_cast<uint16_t>(lo + 191)}},
            V4(10, static_cast<uint8_t>(128 + ((id >> 8) & 0x7f)),
               static_cast<uint8_t>(id), 0, 24)));
        break;
      }
      case 2:
        rules.push_back(
            MakeRule(id, Action::kDeny,
                     {PortProto{Proto::kTcp, 0, 65535},
                      PortProto{Proto::kUdp, 0, 65535}},
                     V4(10, static_cast<uint8_t>(64 + ((id >> 12) & 0x3f)),
                        static_cast<uint8_t>(id >> 4),
                        static_cast<uint8_t>(id << 4), 28)));
        break;
      case 3:
      case 4:
      case 5:
      case 6:
        rules.push_back(MakeRule(id, Action::kAllow,
                                 {One(Proto::kUdp, SinglePort(id))},
                                 HostOf(id)));
        break;
      default:
        rules.push_back(MakeRule(id, Action::kAllow,
                                 {One(Proto::kTcp, SinglePort(id))},
                                 HostOf(id)));
        break;
    }
  }
  return rules;
}

std::vector<Rule> MakeNameRules(size_t n, const AllowedPorts& ports,
                                uint16_t udp_echo, const std::string& name) {
  std::vector<Rule> rules = MakeRules(n, ports);
  rules[0].ports = {One(Proto::kTcp, ports.tcp_bulk),
                    One(Proto::kUdp, ports.udp_sink), One(Proto::kUdp, 53),
                    One(Proto::kUdp, udp_echo)};
  Rule by_name;
  by_name.id = static_cast<uint32_t>(n + 1);
  by_name.action = Action::kAllow;
  by_name.ports = {One(Proto::kTcp, ports.tcp_connect)};
  by_name.spec = absl::StrCat(ports.tcp_connect, "/tcp");
  by_name.names = {name};
  by_name.comment = "egress_bench";
  rules.push_back(std::move(by_name));
  return rules;
}

}  // namespace egress::bench
