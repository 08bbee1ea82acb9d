#include "userspace/events/event_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "userspace/events/event_text.h"

namespace egress {

absl::string_view HookLiteral(uint8_t hook) {
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
  return "";
}

std::string HookName(uint8_t hook) {
  absl::string_view v = HookLiteral(hook);
  return v.empty() ? absl::StrCat("hook_", hook) : std::string(v);
}

absl::string_view VerdictLiteral(uint8_t verdict) {
  switch (verdict) {
    case EGRESS_VERDICT_ALLOW:
      return "ALLOWED";
    case EGRESS_VERDICT_DENY:
      return "DENIED";
    case EGRESS_VERDICT_AUDIT:
      return "AUDIT";
    case EGRESS_VERDICT_UNEXPLAINED:
      return "UNEXPLAINED";
  }
  return "";
}

std::string VerdictName(uint8_t verdict) {
  absl::string_view v = VerdictLiteral(verdict);
  return v.empty() ? absl::StrCat("VERDICT_", verdict) : std::string(v);
}

absl::string_view ReasonLiteral(uint8_t reason) {
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
  return "";
}

std::string ReasonName(uint8_t reason) {
  absl::string_view v = ReasonLiteral(reason);
  return v.empty() ? absl::StrCat("REASON_", reason) : std::string(v);
}

absl::string_view ProtoLiteral(uint8_t p) {
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
  return "";
}

std::string ProtoLabel(uint8_t p) {
  absl::string_view v = ProtoLiteral(p);
  return v.empty() ? absl::StrCat(p) : std::string(v);
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

std::string AllowHint(const egress_event& e, const std::string& target,
                      size_t deny_rule_number) {
  if (e.kind != EGRESS_EVENT_VERDICT ||
      (e.verdict != EGRESS_VERDICT_DENY && e.verdict != EGRESS_VERDICT_AUDIT)) {
    return "";
  }
  std::string suffix = target.empty() ? "" : absl::StrCat(" --target ", target);
  switch (e.reason) {
    case EGRESS_REASON_SOURCE_ROUTE:
      return "";  // no rule allows a source route
    case EGRESS_REASON_MATCH_DENY:
      // Only removing the deny rule can let this through.
      if (deny_rule_number == 0) return "";
      return absl::StrCat("egressctl delete ", deny_rule_number, suffix);
    case EGRESS_REASON_SOCKET_TYPE:
      if (e.sock_type == 3 /* SOCK_RAW */) {
        return absl::StrCat("egressctl allow raw", suffix);
      }
      if (e.proto == IPPROTO_ICMP || e.proto == IPPROTO_ICMPV6) {
        return absl::StrCat("egressctl allow icmp DEST", suffix);
      }
      return "";  // UDP-Lite, SCTP, ...: no rule can name them
  }
  std::string dest = EventAddress(e);
  if (e.proto == IPPROTO_ICMP || e.proto == IPPROTO_ICMPV6) {
    return absl::StrCat("egressctl allow icmp ", dest, suffix);
  }
  if (e.proto != IPPROTO_TCP && e.proto != IPPROTO_UDP) return "";
  return absl::StrCat("egressctl allow ", ntohs(e.port), "/",
                      ProtoLabel(e.proto), " ", dest, suffix);
}

std::string FormatTime(int64_t unix_ns) {
  absl::Time t = absl::FromUnixNanos(unix_ns);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

absl::string_view EventLiteral(const egress_event& e) {
  if (e.kind == EGRESS_EVENT_FLOW_ESTABLISHED) return "established";
  if (e.kind == EGRESS_EVENT_FLOW_CLOSED) return "closed";
  switch (e.hook) {
    case EGRESS_HOOK_CONNECT4:
    case EGRESS_HOOK_CONNECT6:
      return "connect";
    case EGRESS_HOOK_SENDMSG4:
    case EGRESS_HOOK_SENDMSG6:
      return "sendmsg";
    case EGRESS_HOOK_SOCK_CREATE:
      return "socket";
    case EGRESS_HOOK_SETSOCKOPT:
      return "setsockopt";
    case EGRESS_HOOK_SKB_EGRESS:
      return "packet";
  }
  return "other";
}

std::string AsciiOnly(absl::string_view in) {
  std::string out(in);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

std::string CommText(const egress_event& e) {
  char raw_comm[sizeof(e.comm) + 1] = {};
  std::memcpy(raw_comm, e.comm, sizeof(e.comm));
  return AsciiOnly(raw_comm);
}

nlohmann::json EventToJson(const egress_event& e, const EventContext& ctx) {
  const std::string comm = CommText(e);
  const std::string family = e.family == EGRESS_FAMILY_IPV4 ? "IPv4" : "IPv6";
  nlohmann::json j = {
      {"time",
       FormatTime(static_cast<int64_t>(e.ts_ns) + ctx.realtime_offset_ns)},
      {"node_name", ctx.node_name},
      {"event", std::string(EventLiteral(e))},
      {"verdict", VerdictName(e.verdict)},
      {"reason", ReasonName(e.reason)},
      {"hook", HookName(e.hook)},
      {"target", AsciiOnly(ctx.target)},
      {"target_id", e.target_id},
      {"rule_id", e.rule_id},
      {"cgroup", {{"id", e.cgroup_id}, {"path", AsciiOnly(ctx.cgroup_path)}}},
      {"process",
       {{"pid", e.tgid}, {"tid", e.pid}, {"uid", e.uid}, {"comm", comm}}},
      {"ktime_ns", e.ts_ns},
      {"suppressed", e.suppressed},
  };
  if (e.kind != EGRESS_EVENT_VERDICT) {
    j["l4"] = {{"protocol", "tcp"},
               {"family", family},
               {"destination", EventAddress(e)},
               {"destination_port", ntohs(e.port)},
               {"source_port", e.local_port}};
    j["flow"] = {{"direction",
                  e.direction == EGRESS_DIR_OUTBOUND ? "outbound" : "inbound"},
                 {"cookie", e.cookie},
                 {"bytes_sent", e.bytes_sent},
                 {"bytes_received", e.bytes_received},
                 {"srtt_us", e.srtt_us}};
    if (e.kind == EGRESS_EVENT_FLOW_CLOSED) {
      j["flow"]["duration_ns"] = e.duration_ns;
    }
  } else if (e.hook == EGRESS_HOOK_SETSOCKOPT) {
    // A refused socket option has no destination yet.
    j["socket"] = {{"option", "source_route"}, {"family", family}};
  } else if (e.hook == EGRESS_HOOK_SOCK_CREATE) {
    j["socket"] = {{"type", e.sock_type},
                   {"protocol", ProtoLabel(e.proto)},
                   {"family", family}};
  } else {
    j["l4"] = {{"protocol", ProtoLabel(e.proto)},
               {"family", family},
               {"destination", EventAddress(e)},
               {"destination_port", ntohs(e.port)}};
  }
  std::string hint = AllowHint(e, ctx.target, ctx.rule_number);
  if (!hint.empty()) j["hint"] = hint;
  j["message"] = RenderText(EventRecord{e, ctx});
  return j;
}

}  // namespace egress
