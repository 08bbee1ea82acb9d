#include "userspace/events/event_json.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "userspace/common/shell_word.h"
#include "userspace/events/event_text.h"

namespace egress {

namespace {

// A kernel value and the word records use for it.
struct Word {
  uint8_t value;
  absl::string_view word;
};

constexpr Word kHooks[] = {
    {EGRESS_HOOK_CONNECT4, "connect4"},
    {EGRESS_HOOK_CONNECT6, "connect6"},
    {EGRESS_HOOK_SENDMSG4, "sendmsg4"},
    {EGRESS_HOOK_SENDMSG6, "sendmsg6"},
    {EGRESS_HOOK_SOCK_CREATE, "sock_create"},
    {EGRESS_HOOK_SETSOCKOPT, "setsockopt"},
    {EGRESS_HOOK_SKB_EGRESS, "skb_egress"},
    {EGRESS_HOOK_SOCK_OPS, "sock_ops"},
    {EGRESS_HOOK_CONNECT_UNIX, "connect_unix"},
    {EGRESS_HOOK_SENDMSG_UNIX, "sendmsg_unix"},
    {EGRESS_HOOK_SOCK_DIAG, "sock_diag"},
};
constexpr Word kVerdicts[] = {
    {EGRESS_VERDICT_ALLOW, "ALLOWED"},
    {EGRESS_VERDICT_DENY, "DENIED"},
    {EGRESS_VERDICT_AUDIT, "AUDIT"},
    {EGRESS_VERDICT_UNEXPLAINED, "UNEXPLAINED"},
};
constexpr Word kReasons[] = {
    {EGRESS_REASON_NO_MATCH, "NO_MATCHING_RULE"},
    {EGRESS_REASON_MATCH_ALLOW, "MATCHED_ALLOW"},
    {EGRESS_REASON_MATCH_DENY, "MATCHED_DENY"},
    {EGRESS_REASON_UDP_REPLY, "UDP_REPLY"},
    {EGRESS_REASON_SOCKET_TYPE, "SOCKET_TYPE_BLOCKED"},
    {EGRESS_REASON_SOURCE_ROUTE, "SOURCE_ROUTE_BLOCKED"},
    {EGRESS_REASON_UNIX_UNLISTED, "UNIX_UNLISTED"},
    {EGRESS_REASON_RATE_LIMITED, "RATE_LIMITED"},
    {EGRESS_REASON_NOT_ENFORCED, "NOT_ENFORCED"},
    {EGRESS_REASON_UNCLASSIFIED, "UNCLASSIFIED"},
    {EGRESS_REASON_NONLOCAL_SOURCE, "NONLOCAL_SOURCE_BLOCKED"},
    {EGRESS_REASON_RESOLVER_SOURCE, "RESOLVER_SOURCE_BLOCKED"},
};
constexpr Word kSockTypes[] = {
    {1, "stream"},
    {2, "dgram"},
    {5, "seqpacket"},
};
constexpr Word kProtos[] = {
    {IPPROTO_TCP, "tcp"},       {IPPROTO_UDP, "udp"}, {IPPROTO_ICMP, "icmp"},
    {IPPROTO_ICMPV6, "icmpv6"}, {IPPROTO_RAW, "raw"},
};

// The word for `value` ("" when the table has none): a scan of a handful of
// entries, no allocation (the record writer calls it per record).
template <size_t N>
absl::string_view WordIn(const Word (&table)[N], uint8_t value) {
  for (const Word& w : table) {
    if (w.value == value) return w.word;
  }
  return "";
}

// The word, or `prefix` and the number for a value this build does not know.
template <size_t N>
std::string NameIn(const Word (&table)[N], uint8_t value,
                   absl::string_view prefix) {
  absl::string_view w = WordIn(table, value);
  return w.empty() ? absl::StrCat(prefix, value) : std::string(w);
}

}  // namespace

absl::string_view HookLiteral(uint8_t hook) { return WordIn(kHooks, hook); }
std::string HookName(uint8_t hook) { return NameIn(kHooks, hook, "hook_"); }

absl::string_view VerdictLiteral(uint8_t verdict) {
  return WordIn(kVerdicts, verdict);
}
std::string VerdictName(uint8_t verdict) {
  return NameIn(kVerdicts, verdict, "VERDICT_");
}

absl::string_view ReasonLiteral(uint8_t reason) {
  return WordIn(kReasons, reason);
}
std::string ReasonName(uint8_t reason) {
  return NameIn(kReasons, reason, "REASON_");
}

absl::string_view ProtoLiteral(uint8_t p) { return WordIn(kProtos, p); }
std::string ProtoLabel(uint8_t p) { return NameIn(kProtos, p, ""); }

std::string EventAddress(const egress_event& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (e.family == EGRESS_FAMILY_IPV4) {
    inet_ntop(AF_INET, e.addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, e.addr, buf, sizeof(buf));
  }
  return buf;
}

std::string UnixPathText(const egress_event& e) {
  const uint32_t n = std::min<uint32_t>(e.path_len, EGRESS_UNIX_PATH_MAX);
  std::string out(reinterpret_cast<const char*>(e.path), n);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0) {
      c = '@';
    } else if (u < 0x20 || u >= 0x7f) {
      c = '?';
    }
  }
  return out;
}

std::string UnixSockType(uint8_t sock_type) {
  return NameIn(kSockTypes, sock_type, "type_");
}

std::string SocketOptionLabel(const egress_event& e) {
  return e.reason == EGRESS_REASON_NONLOCAL_SOURCE ? "nonlocal_source"
                                                   : "source_route";
}

std::string AllowHint(const egress_event& e, const std::string& target,
                      size_t deny_rule_number) {
  if (!(e.kind == EGRESS_EVENT_VERDICT || IsExistingKind(e)) ||
      (e.verdict != EGRESS_VERDICT_DENY && e.verdict != EGRESS_VERDICT_AUDIT)) {
    return "";
  }
  // A hint is pasted into a shell: every word taken from the record or the
  // target is one word there (ShellWord), whatever it holds.
  std::string suffix =
      target.empty() ? "" : absl::StrCat(" --target ", ShellWord(target));
  switch (e.reason) {
    case EGRESS_REASON_SOURCE_ROUTE:
    case EGRESS_REASON_NONLOCAL_SOURCE:
    case EGRESS_REASON_RESOLVER_SOURCE:
      return "";  // no rule allows a source route or a borrowed address
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
  if (e.family == EGRESS_FAMILY_UNIX) {
    // An address shown with '?' is not the one the process used.
    const std::string path = UnixPathText(e);
    if (path.find('?') != std::string::npos) return "";
    return absl::StrCat("egressctl allow unix ", ShellWord(path), suffix);
  }
  std::string dest = EventAddress(e);
  if (e.proto == IPPROTO_ICMP || e.proto == IPPROTO_ICMPV6) {
    return absl::StrCat("egressctl allow icmp ", dest, suffix);
  }
  if (e.proto != IPPROTO_TCP && e.proto != IPPROTO_UDP) return "";
  return absl::StrCat("egressctl allow ", ntohs(e.port), "/",
                      ProtoLabel(e.proto), " ", dest, suffix);
}

std::string UnlearnedNameHint(const egress_event& e, const EventContext& ctx) {
  if (ctx.unlearned_names.empty()) return "";
  const std::string names = absl::StrJoin(ctx.unlearned_names, ", ");
  std::string hint = absl::StrCat(
      EventAddress(e), " was never an answer to the target's own DNS lookups ",
      "of ", names,
      " (or that answer expired): the application connected to a hard-coded "
      "or cached address, or resolved the name without a DNS query of its own "
      "(see egressctl status)");
  const std::string allow = AllowHint(e, ctx.target, ctx.rule_number);
  if (!allow.empty()) absl::StrAppend(&hint, "; to allow the address: ", allow);
  return hint;
}

std::string FormatTime(int64_t unix_ns) {
  absl::Time t = absl::FromUnixNanos(unix_ns);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

int64_t RecordUnixNs(const egress_event& e, int64_t realtime_offset_ns) {
  const __int128 sum = static_cast<__int128>(e.ts_ns) + realtime_offset_ns;
  if (sum > std::numeric_limits<int64_t>::max()) {
    return std::numeric_limits<int64_t>::max();
  }
  if (sum < std::numeric_limits<int64_t>::min()) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(sum);
}

bool IsExistingKind(const egress_event& e) {
  return e.kind == EGRESS_EVENT_EXISTING || e.kind == EGRESS_EVENT_CUT;
}

absl::string_view EventLiteral(const egress_event& e) {
  if (e.kind == EGRESS_EVENT_FLOW_ESTABLISHED) return "established";
  if (e.kind == EGRESS_EVENT_FLOW_CLOSED) return "closed";
  if (e.kind == EGRESS_EVENT_EXISTING) return "existing";
  if (e.kind == EGRESS_EVENT_CUT) return "cut";
  if (e.kind == EGRESS_EVENT_HELD_BACK) return "held_back";
  if (e.kind == EGRESS_EVENT_SELF_CHECK_FAILED) return "self_check_failed";
  switch (e.hook) {
    case EGRESS_HOOK_CONNECT4:
    case EGRESS_HOOK_CONNECT6:
    case EGRESS_HOOK_CONNECT_UNIX:
      return "connect";
    case EGRESS_HOOK_SENDMSG4:
    case EGRESS_HOOK_SENDMSG6:
    case EGRESS_HOOK_SENDMSG_UNIX:
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
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7f) c = '?';
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
      {"time", FormatTime(RecordUnixNs(e, ctx.realtime_offset_ns))},
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
  if (!ctx.container.name.empty() || !ctx.container.id.empty()) {
    j["container"] = {{"name", AsciiOnly(ctx.container.name)},
                      {"id", AsciiOnly(ctx.container.id)},
                      {"image", AsciiOnly(ctx.container.image)}};
  }
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [key, value] : ctx.container.labels) {
    labels[AsciiOnly(key)] = AsciiOnly(value);
  }
  if (!ctx.container.pod_name.empty()) {
    j["pod"] = {{"namespace", AsciiOnly(ctx.container.pod_namespace)},
                {"name", AsciiOnly(ctx.container.pod_name)}};
    if (!labels.empty()) j["pod"]["labels"] = std::move(labels);
  } else if (!labels.empty() && j.contains("container")) {
    j["container"]["labels"] = std::move(labels);
  }
  if (IsExistingKind(e)) {
    j["l4"] = {{"protocol", ProtoLabel(e.proto)},
               {"family", family},
               {"destination", EventAddress(e)},
               {"destination_port", ntohs(e.port)},
               {"source_port", e.local_port}};
    j["flow"] = {{"direction", "outbound"}, {"cookie", e.cookie}};
  } else if (e.kind != EGRESS_EVENT_VERDICT &&
             e.kind != EGRESS_EVENT_HELD_BACK &&
             e.kind != EGRESS_EVENT_SELF_CHECK_FAILED) {
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
  } else if (e.family == EGRESS_FAMILY_UNIX) {
    j["unix"] = {{"path", UnixPathText(e)},
                 {"abstract", e.path_len > 0 && e.path[0] == 0},
                 {"type", UnixSockType(e.sock_type)}};
  } else if (e.hook == EGRESS_HOOK_SETSOCKOPT) {
    // A refused socket option has no destination yet.
    j["socket"] = {{"option", SocketOptionLabel(e)}, {"family", family}};
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
  // Hubble's name for the DNS names of a flow's destination.
  if (!ctx.destination_names.empty()) {
    j["destination_names"] = ctx.destination_names;
  }
  std::string hint = ctx.unlearned_names.empty()
                         ? AllowHint(e, ctx.target, ctx.rule_number)
                         : UnlearnedNameHint(e, ctx);
  if (!hint.empty()) j["hint"] = hint;
  j["message"] = RenderText(EventRecord{e, ctx});
  return j;
}

}  // namespace egress
