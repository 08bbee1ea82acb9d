#include "userspace/daemon/event_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace egress {

std::string HookName(uint8_t hook) {
  switch (hook) {
    case EGRESS_HOOK_CONNECT4:
      return "connect4";
    case EGRESS_HOOK_CONNECT6:
      return "connect6";
    case EGRESS_HOOK_SENDMSG4:
      return "sendmsg4";
    case EGRESS_HOOK_SENDMSG6:
      return "sendmsg6";
    case EGRESS_HOOK_SOCK_CREATE:
      return "sock_create";
    case EGRESS_HOOK_SETSOCKOPT:
      return "setsockopt";
    case EGRESS_HOOK_SKB_EGRESS:
      return "skb_egress";
    case EGRESS_HOOK_SOCK_OPS:
      return "sock_ops";
  }
  return absl::StrCat("hook_", hook);
}

std::string VerdictName(uint8_t verdict) {
  switch (verdict) {
    case EGRESS_VERDICT_ALLOW:
      return "ALLOWED";
    case EGRESS_VERDICT_DENY:
      return "DENIED";
    case EGRESS_VERDICT_AUDIT:
      return "AUDIT";
  }
  return absl::StrCat("VERDICT_", verdict);
}

std::string ReasonName(uint8_t reason) {
  switch (reason) {
    case EGRESS_REASON_NO_MATCH:
      return "NO_MATCHING_RULE";
    case EGRESS_REASON_MATCH_ALLOW:
      return "MATCHED_ALLOW";
    case EGRESS_REASON_MATCH_DENY:
      return "MATCHED_DENY";
    case EGRESS_REASON_UDP_REPLY:
      return "UDP_REPLY";
    case EGRESS_REASON_SOCKET_TYPE:
      return "SOCKET_TYPE_BLOCKED";
    case EGRESS_REASON_SOURCE_ROUTE:
      return "SOURCE_ROUTE_BLOCKED";
  }
  return absl::StrCat("REASON_", reason);
}

std::string ProtoLabel(uint8_t p) {
  switch (p) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "icmpv6";
    case IPPROTO_RAW:
      return "raw";
  }
  return absl::StrCat(p);
}

std::string EventAddress(const egress_event& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (e.family == EGRESS_FAMILY_IPV4) {
    inet_ntop(AF_INET, e.addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, e.addr, buf, sizeof(buf));
  }
  return buf;
}

nlohmann::json EventToJson(const egress_event& e, const std::string& target) {
  char comm[sizeof(e.comm) + 1] = {};
  std::memcpy(comm, e.comm, sizeof(e.comm));
  nlohmann::json j = {
      {"verdict", VerdictName(e.verdict)},
      {"reason", ReasonName(e.reason)},
      {"hook", HookName(e.hook)},
      {"target", target},
      {"target_id", e.target_id},
      {"rule_id", e.rule_id},
      {"cgroup", {{"id", e.cgroup_id}}},
      {"process",
       {{"pid", e.tgid}, {"tid", e.pid}, {"uid", e.uid}, {"comm", comm}}},
      {"ktime_ns", e.ts_ns},
  };
  if (e.hook == EGRESS_HOOK_SOCK_CREATE) {
    j["socket"] = {
        {"type", e.sock_type},
        {"protocol", ProtoLabel(e.proto)},
        {"family", e.family == EGRESS_FAMILY_IPV4 ? "IPv4" : "IPv6"}};
  } else {
    j["l4"] = {{"protocol", ProtoLabel(e.proto)},
               {"family", e.family == EGRESS_FAMILY_IPV4 ? "IPv4" : "IPv6"},
               {"destination", EventAddress(e)},
               {"destination_port", ntohs(e.port)}};
  }
  return j;
}

}  // namespace egress
