#include "userspace/policy/spec_text.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/spec.h"

namespace egress::policy {
namespace {

// "443" or "1000:2000" (UFW's range), each with `suffix`.
std::vector<std::string> RangeWords(const std::vector<PortProto>& ranges,
                                    absl::string_view suffix) {
  std::vector<std::string> out;
  for (const PortProto& pp : ranges) {
    out.push_back(pp.lo == pp.hi ? absl::StrCat(pp.lo, suffix)
                                 : absl::StrCat(pp.lo, ":", pp.hi, suffix));
  }
  return out;
}

bool SameRanges(const std::vector<PortProto>& a,
                const std::vector<PortProto>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].lo != b[i].lo || a[i].hi != b[i].hi) return false;
  }
  return true;
}

bool AllOf(const std::vector<PortProto>& ranges) {
  return ranges.size() == 1 && ranges[0].AllPorts();
}

}  // namespace

std::string PortsSpecText(absl::Span<const PortProto> ports) {
  std::vector<PortProto> tcp, udp;
  bool icmp = false, raw = false;
  for (const PortProto& pp : CanonicalPorts(ports)) {
    switch (pp.proto) {
      case Proto::kTcp:
        tcp.push_back(pp);
        break;
      case Proto::kUdp:
        udp.push_back(pp);
        break;
      case Proto::kIcmp:
        icmp = true;
        break;
      case Proto::kRaw:
        raw = true;
        break;
      case Proto::kUnix:
        return "unix";
    }
  }
  if (raw) return "raw";  // raw rules have nothing else (spec.h)
  const bool all_tcp = AllOf(tcp), all_udp = AllOf(udp);
  if (all_tcp && all_udp && icmp) return "any";
  if (tcp.empty() && udp.empty()) return icmp ? "icmp" : "";
  if (!icmp) {
    if (udp.empty()) {
      return all_tcp ? "tcp"
                     : absl::StrCat(absl::StrJoin(RangeWords(tcp, ""), ","),
                                    "/tcp");
    }
    if (tcp.empty()) {
      return all_udp ? "udp"
                     : absl::StrCat(absl::StrJoin(RangeWords(udp, ""), ","),
                                    "/udp");
    }
    // No protocol is tcp and udp; every port is "any", which adds icmp.
    if (!all_tcp && SameRanges(tcp, udp)) {
      return absl::StrJoin(RangeWords(tcp, ""), ",");
    }
  }
  // No UFW word holds these: each item with its protocol.
  std::vector<std::string> items;
  if (all_tcp) {
    items.push_back("tcp");
  } else {
    for (std::string& w : RangeWords(tcp, "/tcp"))
      items.push_back(std::move(w));
  }
  if (all_udp) {
    items.push_back("udp");
  } else {
    for (std::string& w : RangeWords(udp, "/udp"))
      items.push_back(std::move(w));
  }
  if (icmp) items.push_back("icmp");
  return absl::StrJoin(items, ",");
}

std::string RuleSpecText(const Rule& rule) {
  const std::string& spec = rule.spec;
  // One word of the grammar: as typed (a port, a range, a service, a
  // protocol), a policy file's one port, UFW's long form normalized.
  if (!spec.empty() && spec.find(',') == std::string::npos) return spec;
  // A list: kept when the grammar reads it as these ports (a typed
  // "80,443/tcp"), not when it was a policy file's ports joined ("80" for
  // tcp and udp, then "443/tcp", would read as both tcp). Numbers only: a
  // service is not looked up to print a rule.
  // UFW's list has one protocol, after its last item; a list with one per
  // item ("443/tcp,443/udp") is printed in UFW's form ("443") if one holds.
  const size_t slash = spec.find('/');
  bool ufw_list =
      !spec.empty() && (slash == std::string::npos || slash > spec.rfind(','));
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    if (item.empty() || !absl::ascii_isdigit(item[0])) ufw_list = false;
  }
  if (ufw_list) {
    absl::StatusOr<std::vector<PortProto>> parsed = ParseSpec(spec);
    if (parsed.ok() && CanonicalPorts(*parsed) == CanonicalPorts(rule.ports)) {
      return spec;
    }
  }
  return PortsSpecText(rule.ports);
}

}  // namespace egress::policy
