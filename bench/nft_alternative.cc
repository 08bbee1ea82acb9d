#include "bench/nft_alternative.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "tests/testing/command.h"
#include "userspace/common/atomic_file.h"
#include "userspace/common/status_macros.h"

namespace egress::bench {
namespace {

constexpr char kCgroupMount[] = "/sys/fs/cgroup/";

std::string PortText(const policy::PortProto& p) {
  return p.lo == p.hi ? absl::StrCat(p.lo) : absl::StrCat(p.lo, "-", p.hi);
}

absl::Status CheckExpressible(const policy::Rule& r) {
  if (!r.names.empty() || !r.unix_paths.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rule ", r.id,
                     " names domains or unix sockets: nftables has no such "
                     "match"));
  }
  for (const policy::PortProto& p : r.ports) {
    if (p.proto != policy::Proto::kTcp && p.proto != policy::Proto::kUdp) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule ", r.id,
                       ": only tcp and udp rules are written "
                       "as nftables rules here"));
    }
  }
  return absl::OkStatus();
}

// The rule's networks of `family`: every address when it names none.
std::vector<std::string> Networks(const policy::Rule& r, int family) {
  std::vector<std::string> out;
  if (r.destinations.empty()) {
    out.push_back(family == 4 ? "0.0.0.0/0" : "::/0");
    return out;
  }
  for (const policy::Cidr& c : r.destinations) {
    if (c.family == family) out.push_back(c.ToString());
  }
  return out;
}

const char* AddrMatch(int family) { return family == 4 ? "ip" : "ip6"; }

// Sets deny4, deny6, allow4, allow6 of address . protocol . port(s).
void AppendSets(const std::vector<policy::Rule>& rules, std::string* out) {
  for (policy::Action action : {policy::Action::kDeny, policy::Action::kAllow})
    for (int family : {4, 6}) {
      std::vector<std::string> elements;
      for (const policy::Rule& r : rules) {
        if (r.action != action) continue;
        for (const std::string& net : Networks(r, family)) {
          for (const policy::PortProto& p : r.ports) {
            elements.push_back(absl::StrCat(
                net, " . ", policy::ProtoName(p.proto), " . ", PortText(p)));
          }
        }
      }
      absl::StrAppend(out, "  set ", policy::ActionName(action), family,
                      " {\n    type ", family == 4 ? "ipv4_addr" : "ipv6_addr",
                      " . inet_proto . inet_service\n    flags interval\n");
      if (!elements.empty()) {
        absl::StrAppend(out, "    elements = {\n      ",
                        absl::StrJoin(elements, ",\n      "), "\n    }\n");
      }
      absl::StrAppend(out, "  }\n");
    }
}

// One nft rule per rule, protocol and family, denies first.
void AppendLinear(const std::vector<policy::Rule>& rules, std::string* out) {
  for (policy::Action action : {policy::Action::kDeny, policy::Action::kAllow})
    for (const policy::Rule& r : rules) {
      if (r.action != action) continue;
      const char* verdict =
          action == policy::Action::kDeny ? "goto refuse" : "accept";
      for (int family : {4, 6}) {
        const std::vector<std::string> nets = Networks(r, family);
        if (nets.empty()) continue;
        for (const policy::PortProto& p : r.ports) {
          absl::StrAppend(out, "    ", AddrMatch(family), " daddr { ",
                          absl::StrJoin(nets, ", "), " } meta l4proto ",
                          policy::ProtoName(p.proto));
          if (!p.AllPorts()) absl::StrAppend(out, " th dport ", PortText(p));
          absl::StrAppend(out, " ", verdict, "\n");
        }
      }
    }
}

}  // namespace

const char* NftShapeName(NftShape shape) {
  return shape == NftShape::kSet ? "set" : "linear";
}

absl::StatusOr<std::string> NftScript(const std::string& table,
                                      const std::string& cgroup, int level,
                                      NftShape shape,
                                      const std::vector<policy::Rule>& rules,
                                      NftReplies replies) {
  for (const policy::Rule& r : rules) {
    EGRESS_RETURN_IF_ERROR(CheckExpressible(r));
  }
  std::string out = absl::StrCat("table inet ", table, " {\n");
  if (shape == NftShape::kSet) AppendSets(rules, &out);
  absl::StrAppend(&out,
                  "  chain out {\n"
                  "    type filter hook output priority filter; policy "
                  "accept;\n"
                  "    socket cgroupv2 level ",
                  level, " \"", cgroup,
                  "\" goto enforce\n"
                  "  }\n"
                  "  chain refuse {\n"
                  "    meta l4proto tcp reject with tcp reset\n"
                  "    reject with icmpx admin-prohibited\n"
                  "  }\n"
                  "  chain enforce {\n");
  if (replies == NftReplies::kEstablished) {
    absl::StrAppend(&out, "    ct state established,related accept\n");
  }
  if (shape == NftShape::kSet) {
    for (const char* set : {"deny", "allow"}) {
      for (int family : {4, 6}) {
        absl::StrAppend(
            &out, "    ", AddrMatch(family),
            " daddr . meta l4proto . th dport @", set, family,
            absl::string_view(set) == "deny" ? " goto refuse\n" : " accept\n");
      }
    }
  } else {
    AppendLinear(rules, &out);
  }
  absl::StrAppend(&out, "    goto refuse\n  }\n}\n");
  return out;
}

absl::StatusOr<std::string> NftCgroupPath(const std::string& dir) {
  absl::string_view rest = dir;
  if (!absl::ConsumePrefix(&rest, kCgroupMount) || rest.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup ", dir, " is not below ", kCgroupMount,
                     ", where nft's cgroupv2 match looks it up"));
  }
  return std::string(rest);
}

absl::StatusOr<std::unique_ptr<NftTable>> NftTable::Load(
    const std::string& name, const std::string& script) {
  const std::string path =
      absl::StrCat("/tmp/egress-bench-", getpid(), "-", name, ".nft");
  EGRESS_RETURN_IF_ERROR(WriteFileAtomically(path, script));
  auto loaded = testing::RunCommandOk({"nft", "-f", path}, absl::Seconds(120));
  std::remove(path.c_str());
  if (!loaded.ok()) return loaded.status();
  return std::unique_ptr<NftTable>(new NftTable(name));
}

NftTable::~NftTable() {
  auto gone = testing::RunCommandOk({"nft", "delete", "table", "inet", name_},
                                    absl::Seconds(60));
  if (!gone.ok()) {
    std::fprintf(stderr, "cleanup: %s\n", gone.status().ToString().c_str());
  }
}

}  // namespace egress::bench
