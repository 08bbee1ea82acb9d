#include "userspace/events/event_line.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "userspace/common/shell_word.h"

namespace egress {
namespace {

// A number to write in decimal.
struct Num {
  uint64_t value;
};

// Writes through a raw cursor into space reserved up front (no per-append
// size checks or reallocation).
struct Cursor {
  char* p;

  // Writes each part in turn: text, literals, single chars and Num{...}.
  template <typename... Parts>
  void Put(const Parts&... parts) {
    (One(parts), ...);
  }

  void One(std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  // A literal: a copy of known size, which the compiler turns into a few
  // stores instead of a call to memcpy.
  template <size_t N>
  void One(const char (&s)[N]) {
    std::memcpy(p, s, N - 1);
    p += N - 1;
  }
  // Exactly a char: any other integer must say it is a number (Num).
  template <typename C, typename = std::enable_if_t<std::is_same_v<C, char>>>
  void One(C c) {
    *p++ = c;
  }
  void One(Num n) { p = std::to_chars(p, p + 24, n.value).ptr; }

  // nlohmann::json::dump() escaping for printable ASCII text. False on a
  // control byte, DEL or a byte >= 0x80: the tree writer (the reference)
  // writes those records, turning such bytes of names into '?' (AsciiOnly)
  // so that no name can break a text line. The common case, nothing to
  // escape, is one scan and one memcpy (a byte loop storing through the
  // member `p` would reload it after every store: a char store may alias it).
  bool Escaped(std::string_view s) {
    auto plain = [](unsigned char c) {
      return c >= 0x20 && c != '"' && c != '\\' && c < 0x7f;
    };
    size_t i = 0;
    while (i < s.size() && plain(static_cast<unsigned char>(s[i]))) ++i;
    std::memcpy(p, s.data(), i);
    char* q = p + i;
    for (; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (plain(c)) {
        *q++ = s[i];
      } else if (c == '"' || c == '\\') {
        *q++ = '\\';
        *q++ = static_cast<char>(c);
      } else {
        return false;
      }
    }
    p = q;
    return true;
  }
};

// The names of event_json.h without allocating: a literal for every known
// value, the allocated fallback name otherwise.
std::string_view LiteralOr(absl::string_view literal,
                           std::string (*name)(uint8_t), uint8_t value,
                           std::string* storage) {
  if (!literal.empty()) return std::string_view(literal.data(), literal.size());
  *storage = name(value);
  return *storage;
}
std::string_view HookView(uint8_t hook, std::string* storage) {
  return LiteralOr(HookLiteral(hook), HookName, hook, storage);
}
std::string_view VerdictView(uint8_t verdict, std::string* storage) {
  return LiteralOr(VerdictLiteral(verdict), VerdictName, verdict, storage);
}
std::string_view ReasonView(uint8_t reason, std::string* storage) {
  return LiteralOr(ReasonLiteral(reason), ReasonName, reason, storage);
}
std::string_view ProtoView(uint8_t proto, std::string* storage) {
  return LiteralOr(ProtoLiteral(proto), ProtoLabel, proto, storage);
}

std::string_view EventView(const egress_event& e) {
  absl::string_view v = EventLiteral(e);
  return std::string_view(v.data(), v.size());
}

// EventAddress(): inet_ntop for IPv6, by hand for IPv4.
std::string_view AddressView(const egress_event& e, char (&buf)[48]) {
  if (e.family != EGRESS_FAMILY_IPV4) {
    if (inet_ntop(AF_INET6, e.addr, buf, sizeof(buf)) == nullptr) buf[0] = 0;
    return buf;
  }
  char* p = buf;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) *p++ = '.';
    p = std::to_chars(p, buf + sizeof(buf), e.addr[i]).ptr;
  }
  return std::string_view(buf, static_cast<size_t>(p - buf));
}

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// `s` escaped into `*out`; false as Cursor::Escaped.
bool EscapeInto(std::string_view s, std::string* out) {
  out->resize(6 * s.size());
  Cursor w{out->data()};
  if (!w.Escaped(s)) return false;
  out->resize(static_cast<size_t>(w.p - out->data()));
  return true;
}

// "2026-11-24T17:51:43" and "Nov 24 17:51:43" of a second since the epoch;
// false after year 9999.
bool FormatSecond(int64_t second, char (&iso)[20], char (&text)[16]) {
  // Civil date from days since the epoch (H. Hinnant's algorithm).
  const int64_t days = second / 86400;
  const int64_t sod = second % 86400;
  const int64_t z = days + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  if (y > 9999) return false;
  static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const int hh = static_cast<int>(sod / 3600);
  const int mm = static_cast<int>(sod / 60 % 60);
  const int ss = static_cast<int>(sod % 60);
  Put2(iso, static_cast<int>(y / 100));
  Put2(iso + 2, static_cast<int>(y % 100));
  iso[4] = '-';
  Put2(iso + 5, m);
  iso[7] = '-';
  Put2(iso + 8, d);
  iso[10] = 'T';
  Put2(iso + 11, hh);
  iso[13] = ':';
  Put2(iso + 14, mm);
  iso[16] = ':';
  Put2(iso + 17, ss);
  std::memcpy(text, kMonths + 3 * (m - 1), 3);
  text[3] = ' ';
  Put2(text + 4, d);
  text[6] = ' ';
  std::memcpy(text + 7, iso + 11, 8);
  return true;
}

// The nine digits of the fraction of a second.
void NanosDigits(int nanos, char (&frac)[9]) {
  for (int i = 8, v = nanos; i >= 0; --i, v /= 10) {
    frac[i] = static_cast<char>('0' + v % 10);
  }
}

// What a record contributes besides its numbers, as text ready to copy. The
// views point into the object itself: fill it in place, do not copy it.
struct RecordViews {
  char comm_buf[sizeof(egress_event::comm) + 1] = {};
  char comm_esc_buf[6 * sizeof(egress_event::comm)];
  char addr_buf[48];
  std::string s_hook, s_verdict, s_reason, s_proto, other_hint;
  std::string_view comm, comm_esc, hook, verdict, reason, proto, family, addr;
  uint16_t port = 0;
  bool is_socket = false;
  // The common hint, written in place by PutHint; any other comes from
  // AllowHint() itself, in other_hint.
  bool plain_hint = false;

  // False when the process name is not covered.
  bool Fill(const egress_event& e, const EventContext& ctx) {
    std::memcpy(comm_buf, e.comm, sizeof(e.comm));
    comm = comm_buf;
    // Escaped once, written twice. The names below (hook, verdict, reason,
    // proto) are our own literals or "hook_9"-style fallbacks: nothing in
    // them to escape.
    Cursor c{comm_esc_buf};
    if (!c.Escaped(comm)) return false;
    comm_esc =
        std::string_view(comm_esc_buf, static_cast<size_t>(c.p - comm_esc_buf));
    hook = HookView(e.hook, &s_hook);
    verdict = VerdictView(e.verdict, &s_verdict);
    reason = ReasonView(e.reason, &s_reason);
    proto = ProtoView(e.proto, &s_proto);
    family = e.family == EGRESS_FAMILY_IPV4 ? "IPv4" : "IPv6";
    // A flow record is a flow whatever its hook field says (as in the tree).
    is_socket =
        e.hook == EGRESS_HOOK_SOCK_CREATE && e.kind == EGRESS_EVENT_VERDICT;
    addr = AddressView(e, addr_buf);
    port = ntohs(e.port);
    plain_hint = (e.verdict == EGRESS_VERDICT_DENY ||
                  e.verdict == EGRESS_VERDICT_AUDIT) &&
                 e.reason == EGRESS_REASON_NO_MATCH &&
                 (e.proto == IPPROTO_TCP || e.proto == IPPROTO_UDP);
    if (!plain_hint) other_hint = AllowHint(e, ctx.target, ctx.rule_number);
    return true;
  }

  // Bytes of the line that vary with the record, before escaping.
  size_t VariableSize() const {
    return 2 * comm.size() + other_hint.size() + s_hook.size() +
           s_verdict.size() + s_reason.size() + 3 * s_proto.size();
  }
};

// "hint":"...", when there is one.
bool PutHint(Cursor& w, const RecordViews& v, const EventContext& ctx,
             std::string_view hint_target_esc) {
  if (v.plain_hint) {
    w.Put("\"hint\":\"egressctl allow ", Num{v.port}, '/', v.proto, ' ',
          v.addr);
    if (!ctx.target.empty()) w.Put(" --target ", hint_target_esc);
    w.Put("\",");
  } else if (!v.other_hint.empty()) {
    w.Put("\"hint\":\"");
    if (!w.Escaped(v.other_hint)) return false;
    w.Put("\",");
  }
  return true;
}

// "family":"IPv4","protocol":"tcp", inside "l4" and "socket".
void PutFamilyAndProtocol(Cursor& w, const RecordViews& v) {
  w.Put("\"family\":\"", v.family, "\",\"protocol\":\"", v.proto, '"');
}

// "l4":{...}, of a connect or send.
void PutL4(Cursor& w, const RecordViews& v) {
  w.Put("\"l4\":{\"destination\":\"", v.addr,
        "\",\"destination_port\":", Num{v.port}, ',');
  PutFamilyAndProtocol(w, v);
  w.Put("},");
}

// "socket":{...}, of a socket creation.
void PutSocket(Cursor& w, const egress_event& e, const RecordViews& v) {
  w.Put("\"socket\":{");
  PutFamilyAndProtocol(w, v);
  w.Put(",\"type\":", Num{e.sock_type}, "},");
}

// The message (EventText() of the record) after its time and target:
// "python3[42] -> 10.0.0.5:443/tcp DENIED (no matching rule) +3 suppressed".
bool PutMessageTail(Cursor& w, const egress_event& e, const RecordViews& v) {
  if (!v.comm.empty()) w.Put(v.comm_esc, '[', Num{e.tgid}, "] ");
  if (v.is_socket) {
    w.Put("socket ", v.proto, " type ", Num{e.sock_type});
  } else if (v.addr.find(':') != std::string_view::npos) {
    w.Put("-> [", v.addr, "]:", Num{v.port}, '/', v.proto);
  } else {
    w.Put("-> ", v.addr, ':', Num{v.port}, '/', v.proto);
  }
  w.Put(' ', v.verdict, " (");
  for (char c : v.reason) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
    w.Put(c == '_'                 ? ' '
          : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a')
                                   : c);
  }
  w.Put(')');
  if (e.suppressed > 0) w.Put(" +", Num{e.suppressed}, " suppressed");
  return true;
}

// True for the records the kernel's sock_ops program writes.
bool IsTcpFlow(const egress_event& e) {
  return e.kind == EGRESS_EVENT_FLOW_ESTABLISHED ||
         e.kind == EGRESS_EVENT_FLOW_CLOSED;
}

// "flow":{...}, of an established or closed TCP flow.
void PutFlow(Cursor& w, const egress_event& e) {
  w.Put("\"flow\":{\"bytes_received\":", Num{e.bytes_received},
        ",\"bytes_sent\":", Num{e.bytes_sent}, ",\"cookie\":", Num{e.cookie},
        ",\"direction\":\"",
        e.direction == EGRESS_DIR_OUTBOUND ? "outbound" : "inbound", '"');
  if (e.kind == EGRESS_EVENT_FLOW_CLOSED) {
    w.Put(",\"duration_ns\":", Num{e.duration_ns});
  }
  w.Put(",\"srtt_us\":", Num{e.srtt_us}, "},");
}

// "l4":{...}, of a TCP flow: always "tcp", with the local port.
void PutFlowL4(Cursor& w, const egress_event& e, const RecordViews& v) {
  w.Put("\"l4\":{\"destination\":\"", v.addr,
        "\",\"destination_port\":", Num{v.port}, ",\"family\":\"", v.family,
        "\",\"protocol\":\"tcp\",\"source_port\":", Num{e.local_port}, "},");
}

// The message of a flow after its time and target:
// "-> 10.0.0.5:443/tcp ALLOWED (closed outbound, sent 1 B, received 2 B)".
void PutFlowMessageTail(Cursor& w, const egress_event& e,
                        const RecordViews& v) {
  if (!v.comm.empty()) w.Put(v.comm_esc, '[', Num{e.tgid}, "] ");
  if (v.addr.find(':') != std::string_view::npos) {
    w.Put("-> [", v.addr, "]:", Num{v.port}, "/tcp ");
  } else {
    w.Put("-> ", v.addr, ':', Num{v.port}, "/tcp ");
  }
  const bool closed = e.kind == EGRESS_EVENT_FLOW_CLOSED;
  w.Put(v.verdict, " (", closed ? "closed " : "established ",
        e.direction == EGRESS_DIR_OUTBOUND ? "outbound" : "inbound");
  if (closed) {
    w.Put(", sent ", Num{e.bytes_sent}, " B, received ", Num{e.bytes_received},
          " B");
  }
  w.Put(')');
  if (e.suppressed > 0) w.Put(" +", Num{e.suppressed}, " suppressed");
}

// "process":{...},"reason":"...","rule_id":N,
void PutProcessToRuleId(Cursor& w, const egress_event& e,
                        const RecordViews& v) {
  w.Put("\"process\":{\"comm\":\"", v.comm_esc, "\",\"pid\":", Num{e.tgid},
        ",\"tid\":", Num{e.pid}, ",\"uid\":", Num{e.uid}, "},\"reason\":\"",
        v.reason, "\",\"rule_id\":", Num{e.rule_id}, ',');
}

}  // namespace

bool EventLineWriter::UseContext(const EventContext& ctx) {
  if (context_set_ && ctx.target == target_ &&
      ctx.cgroup_path == cgroup_path_ && ctx.node_name == node_name_) {
    return context_ok_;
  }
  target_ = ctx.target;
  cgroup_path_ = ctx.cgroup_path;
  node_name_ = ctx.node_name;
  context_set_ = true;
  context_ok_ = EscapeInto(target_, &target_esc_) &&
                EscapeInto(ShellWord(target_), &hint_target_esc_) &&
                EscapeInto(cgroup_path_, &cgroup_path_esc_) &&
                EscapeInto(node_name_, &node_name_esc_);
  return context_ok_;
}

bool EventLineWriter::Append(const egress_event& e, const EventContext& ctx,
                             std::string* out) {
  // Existing connections (EGRESS_EVENT_EXISTING and _CUT, made by
  // egressd), held-back summaries, refused socket options and unix records
  // (rare, or rarely many) take the tree path.
  const bool flow = IsTcpFlow(e);
  if ((e.kind != EGRESS_EVENT_VERDICT && !flow) ||
      e.hook == EGRESS_HOOK_SETSOCKOPT || e.family == EGRESS_FAMILY_UNIX) {
    return false;
  }
  // Records that name DNS names (decided by a name, or refused an address
  // never learned for one) take the tree path too.
  if (!ctx.destination_names.empty() || !ctx.unlearned_names.empty()) {
    return false;
  }
  // So do records of containers (their identity is only in the tree form).
  if (!ctx.container.name.empty() || !ctx.container.id.empty()) return false;
  const int64_t unix_ns = RecordUnixNs(e, ctx.realtime_offset_ns);
  if (unix_ns < 0) return false;
  if (!UseContext(ctx)) return false;
  const int64_t second = unix_ns / 1000000000;
  if (second != cached_second_) {
    if (!FormatSecond(second, iso_, text_)) return false;
    cached_second_ = second;
  }
  char frac[9];
  NanosDigits(static_cast<int>(unix_ns % 1000000000), frac);
  RecordViews v;
  if (!v.Fill(e, ctx)) return false;

  // Every byte can grow to 6 when escaped; the fixed text is below 700 B.
  const size_t need = 1024 + cgroup_path_esc_.size() + 2 * target_esc_.size() +
                      hint_target_esc_.size() + node_name_esc_.size() +
                      6 * v.VariableSize();
  if (scratch_.size() < need) scratch_.resize(std::max<size_t>(need, 4096));
  Cursor w{scratch_.data()};
  w.Put("{\"cgroup\":{\"id\":", Num{e.cgroup_id}, ",\"path\":\"",
        cgroup_path_esc_, "\"},\"event\":\"", EventView(e), "\",");
  // Flow records never have a hint (AllowHint).
  if (flow) {
    PutFlow(w, e);
  } else if (!PutHint(w, v, ctx, hint_target_esc_)) {
    return false;
  }
  w.Put("\"hook\":\"", v.hook, "\",\"ktime_ns\":", Num{e.ts_ns}, ',');
  if (flow) {
    PutFlowL4(w, e, v);
  } else if (!v.is_socket) {
    PutL4(w, v);
  }
  w.Put("\"message\":\"", std::string_view(text_, 15), '.',
        std::string_view(frac, 3), ' ', target_esc_, ' ');
  if (flow) {
    PutFlowMessageTail(w, e, v);
  } else if (!PutMessageTail(w, e, v)) {
    return false;
  }
  w.Put("\",\"node_name\":\"", node_name_esc_, "\",");
  PutProcessToRuleId(w, e, v);
  if (v.is_socket) PutSocket(w, e, v);
  w.Put("\"suppressed\":", Num{e.suppressed}, ",\"target\":\"", target_esc_,
        "\",\"target_id\":", Num{e.target_id}, ",\"time\":\"",
        std::string_view(iso_, 19), '.', std::string_view(frac, 9),
        "Z\",\"verdict\":\"", v.verdict, "\"}");
  out->append(scratch_.data(), static_cast<size_t>(w.p - scratch_.data()));
  return true;
}

}  // namespace egress
