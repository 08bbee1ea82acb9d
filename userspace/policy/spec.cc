#include "userspace/policy/spec.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "userspace/common/status_macros.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/services.h"
#include "userspace/policy/unix_rules.h"

namespace egress::policy {
namespace {

constexpr absl::string_view kInboundMessage =
    "egressctl only controls outgoing connections; accepted inbound "
    "connections are never affected";

// What 'to' needs after it, in both forms.
constexpr absl::string_view kToNeeds = "an address, network or host name";

// The port, or nullopt with the reason in *why.
std::optional<uint16_t> PortNumber(absl::string_view s, std::string* why) {
  // SimpleAtoi would accept "+25" and " 25".
  if (s.empty() ||
      s.find_first_not_of("0123456789") != absl::string_view::npos) {
    *why = "not a number";
    return std::nullopt;
  }
  uint64_t v = 0;
  if (s.size() > 6 || !absl::SimpleAtoi(s, &v) || v == 0 || v > 65535) {
    *why = "out of range 1-65535";
    return std::nullopt;
  }
  // 0443 is 443 here, but octal 291 to YAML 1.1 and C readers: a rule
  // copied into a policy file or a script would change meaning.
  if (s[0] == '0') {
    *why = absl::StrCat(
        "written with a leading zero, which some tools read as octal; write ",
        v);
    return std::nullopt;
  }
  return static_cast<uint16_t>(v);
}

void AddUnique(std::vector<PortProto>& out, const PortProto& pp) {
  if (std::find(out.begin(), out.end(), pp) == out.end()) out.push_back(pp);
}

// " in 'WORD'" when the failing piece is only part of the word.
std::string Within(absl::string_view piece, absl::string_view word) {
  return piece == word ? "" : absl::StrCat(" in '", word, "'");
}

// "80,443,1000-2000" -> ranges. `word` is the whole word, for messages.
absl::StatusOr<std::vector<std::pair<uint16_t, uint16_t>>> ParsePortList(
    absl::string_view list, absl::string_view word) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    const size_t sep = item.find_first_of("-:");
    std::string why;
    if (sep == absl::string_view::npos) {
      const std::optional<uint16_t> port = PortNumber(item, &why);
      if (!port) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bad port '", item, "'", Within(item, word), ": ", why));
      }
      out.emplace_back(*port, *port);
      continue;
    }
    const std::string subject =
        absl::StrCat("bad port range '", item, "'", Within(item, word), ": ");
    std::optional<uint16_t> ends[2];
    const absl::string_view parts[2] = {item.substr(0, sep),
                                        item.substr(sep + 1)};
    for (int i = 0; i < 2; ++i) {
      ends[i] = PortNumber(parts[i], &why);
      if (!ends[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat(subject, "'", parts[i], "' is ", why));
      }
    }
    if (*ends[0] > *ends[1]) {
      return absl::InvalidArgumentError(
          absl::StrCat(subject, "low end is above high end"));
    }
    out.emplace_back(*ends[0], *ends[1]);
  }
  return out;
}

// Ports of `body` (a port list or a service name) for each of `protos`.
absl::StatusOr<std::vector<PortProto>> PortsFor(
    absl::string_view body, const std::vector<Proto>& protos,
    absl::string_view word) {
  std::vector<PortProto> out;
  if (!body.empty() && absl::ascii_isdigit(body[0])) {
    EGRESS_ASSIGN_OR_RETURN(auto ranges, ParsePortList(body, word));
    for (Proto p : protos) {
      for (const auto& [lo, hi] : ranges) AddUnique(out, {p, lo, hi});
    }
    return out;
  }
  if (body.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing port or service in '", word, "'"));
  }
  EGRESS_ASSIGN_OR_RETURN(std::vector<PortProto> service, LookupService(body));
  for (Proto p : protos) {
    for (const PortProto& pp : service) {
      if (pp.proto == p) AddUnique(out, pp);
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service '", body, "' has no ", ProtoName(protos[0]),
                     " port (in '", word, "')"));
  }
  return out;
}

std::vector<PortProto> AnyPorts() {
  return {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
}

bool LooksLikeAddress(absl::string_view word) {
  return word.find_first_of(":/") != absl::string_view::npos ||
         word.find_first_not_of("0123456789.") == absl::string_view::npos;
}

// Only a dotted name is a name rule: a single word ("tcp", "localhost",
// "eth0") is far more often a typo than a host. Names are never resolved.
bool IsHostName(absl::string_view word) {
  if (word.empty() || word.size() > 253) return false;
  if (word.back() == '.') word.remove_suffix(1);
  if (word.find('.') == absl::string_view::npos) return false;
  for (absl::string_view label : absl::StrSplit(word, '.')) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

// Why `word` (after SPEC `spec`) could not be a destination, with the
// likely intent when there is one.
std::string NotADestination(absl::string_view word, absl::string_view spec) {
  std::string message = absl::StrCat(
      "'", word,
      "' is not a destination: expected an address, CIDR or host name");
  const bool spec_has_proto = spec.find('/') != absl::string_view::npos ||
                              spec == "any" || spec == "icmp" ||
                              spec == "raw" || spec == "tcp" || spec == "udp";
  if (word == "from") {
    // Not "from.example.org": UFW's "from ADDRESS" names a source.
    absl::StrAppend(&message,
                    " ('from' names a source, which egress cannot match: "
                    "rules match the destination, the source is always this "
                    "host)");
  } else if ((word == "tcp" || word == "udp") && !spec.empty() &&
             !spec_has_proto) {
    absl::StrAppend(&message, " (did you mean ", spec, "/", word, "?)");
  } else if (word == "localhost") {
    absl::StrAppend(&message, " (did you mean 127.0.0.1 or ::1?)");
  } else if (absl::ascii_isdigit(word[0]) || LookupService(word).ok()) {
    absl::StrAppend(&message,
                    " (one service or port per rule, before the destination)");
  } else if (IsHostName(absl::StrCat(word, ".x"))) {
    absl::StrAppend(&message, " (a host name must be fully qualified, e.g. '",
                    word, ".example.org')");
  }
  return message;
}

// Collects DEST words into rule->destinations and rule->names. A name is
// kept as a rule (name_rules.h): nothing is resolved.
absl::Status ParseDestinations(absl::Span<const std::string> words,
                               Rule* rule) {
  std::string any_word;
  for (const std::string& word : words) {
    if (word == "any" || word == "anywhere") {
      any_word = word;
    } else if (LooksLikeAddress(word)) {
      EGRESS_ASSIGN_OR_RETURN(Cidr cidr, Cidr::Parse(word));
      if (std::find(rule->destinations.begin(), rule->destinations.end(),
                    cidr) == rule->destinations.end()) {
        rule->destinations.push_back(cidr);
      }
    } else if (IsHostName(word) || (absl::StartsWith(word, "*.") &&
                                    IsHostName(word.substr(2) + ".x"))) {
      EGRESS_ASSIGN_OR_RETURN(std::string name, CanonicalNewRuleName(word));
      if (std::find(rule->names.begin(), rule->names.end(), name) ==
          rule->names.end()) {
        rule->names.push_back(name);
      }
    } else {
      return absl::InvalidArgumentError(NotADestination(word, rule->spec));
    }
  }
  if (!any_word.empty() && !rule->Anywhere()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", any_word, "' cannot be combined with other destinations"));
  }
  if (!rule->names.empty() &&
      std::none_of(rule->ports.begin(), rule->ports.end(),
                   [](const PortProto& pp) {
                     return pp.proto == Proto::kTcp || pp.proto == Proto::kUdp;
                   })) {
    return absl::InvalidArgumentError(
        absl::StrCat("a name takes tcp and udp ports, not ", rule->spec, ": '",
                     rule->names[0], "'"));
  }
  return absl::OkStatus();
}

// A rule of `action`, its comment taken from "comment TEXT" at the end of
// `words` (and taken off them). As in UFW, TEXT is one argument and comes
// last: a comment that took every word after it would swallow a destination
// typed after it ("comment web to 192.0.2.1"), leaving a rule for anywhere.
absl::StatusOr<Rule> RuleWithComment(Action action,
                                     absl::Span<const std::string>& words) {
  Rule rule;
  rule.action = action;
  const auto it = std::find(words.begin(), words.end(), "comment");
  if (it == words.end()) return rule;
  const size_t at = static_cast<size_t>(it - words.begin());
  if (at + 1 >= words.size() || words[at + 1].empty()) {
    return absl::InvalidArgumentError("'comment' needs a text after it");
  }
  if (at + 2 < words.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'comment' takes one argument and comes last, but '", words[at + 2],
        "' follows '", words[at + 1],
        "': quote a comment of several words (comment 'web server'), and put "
        "the destinations before it"));
  }
  EGRESS_RETURN_IF_ERROR(CheckCommentText(words[at + 1]));
  rule.comment = words[at + 1];
  words = words.subspan(0, at);
  return rule;
}

absl::StatusOr<Rule> ParseShortForm(Action action,
                                    absl::Span<const std::string> words) {
  EGRESS_ASSIGN_OR_RETURN(Rule rule, RuleWithComment(action, words));
  if (words.empty()) {
    return absl::InvalidArgumentError(
        "missing service or port before 'comment'");
  }
  rule.spec = words[0];
  EGRESS_ASSIGN_OR_RETURN(const std::vector<PortProto> ports,
                          ParseSpec(words[0]));
  rule.ports.assign(ports.begin(), ports.end());
  words.remove_prefix(1);
  if (!words.empty() && words[0] == "to") {
    words.remove_prefix(1);
    // No destination means anywhere: "443 to $IP" with $IP unset must not
    // become a rule for every address.
    if (words.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'to' needs ", kToNeeds, " after it"));
    }
  }
  if (rule.ports.size() == 1 && rule.ports[0].proto == Proto::kRaw &&
      !words.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw takes no destination: '", words[0], "'"));
  }
  EGRESS_RETURN_IF_ERROR(ParseDestinations(words, &rule));
  return rule;
}

// "unix ADDRESS... [comment TEXT]": a unix-socket rule (unix_rules.h).
absl::StatusOr<Rule> ParseUnixForm(Action action,
                                   absl::Span<const std::string> words) {
  EGRESS_ASSIGN_OR_RETURN(Rule rule, RuleWithComment(action, words));
  rule.spec = "unix";
  rule.ports = {{Proto::kUnix}};
  for (const std::string& word : words) {
    EGRESS_RETURN_IF_ERROR(UnixAddressBytes(word).status());
    if (std::find(rule.unix_paths.begin(), rule.unix_paths.end(), word) ==
        rule.unix_paths.end()) {
      rule.unix_paths.push_back(word);
    }
  }
  if (rule.unix_paths.empty()) {
    return absl::InvalidArgumentError(
        "unix needs a socket address: an absolute path (/run/x.sock) or an "
        "abstract name (@name)");
  }
  return rule;
}

// UFW's "on IFACE": egress rules have no interface, so say that instead of
// failing on the interface name as a service or destination.
absl::Status CheckNoInterface(absl::Span<const std::string> words) {
  const auto end = std::find(words.begin(), words.end(), "comment");
  const auto on = std::find(words.begin(), end, "on");
  if (on == end) return absl::OkStatus();
  const std::string what =
      on + 1 < end ? absl::StrCat("'on ", *(on + 1), "'") : "'on'";
  std::string message = absl::StrCat(
      "egress has no per-interface rules: a rule applies to every outgoing "
      "connection of the target's processes, on any interface; leave out ",
      what);
  if (std::find(words.begin(), end, "in") != end) {
    absl::StrAppend(&message, ". Also, ", kInboundMessage);
  }
  return absl::InvalidArgumentError(message);
}

bool IsLongFormKeyword(absl::string_view w) {
  return w == "out" || w == "in" || w == "proto" || w == "to" || w == "port" ||
         w == "from";
}

// The clauses of the long form, each at most once.
struct LongFormClauses {
  std::optional<std::string> proto, to, port;
};

// Refuses UFW's source port ("from any port N"): egress rules match the
// destination only, and taking N as the destination port would allow or
// deny a port the user never meant.
absl::Status SourcePortError(absl::Span<const std::string> words, size_t i) {
  const std::string port =
      i + 1 < words.size() && !IsLongFormKeyword(words[i + 1]) ? words[i + 1]
                                                               : "N";
  return absl::InvalidArgumentError(absl::StrCat(
      "'from ... port ", port,
      "' names a source port, which egress cannot match: rules match the "
      "destination only, the source is always this host. For destination "
      "port ",
      port, " write 'to ADDRESS port ", port, "' (or 'to any port ", port,
      "')"));
}

absl::StatusOr<LongFormClauses> TakeClauses(
    absl::Span<const std::string> words) {
  LongFormClauses c;
  // Whether the last of 'from' and 'to' was 'from': a 'port' then belongs
  // to the source, as in UFW.
  bool after_from = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& kw = words[i];
    if (kw == "in") return absl::InvalidArgumentError(kInboundMessage);
    if (kw == "out" && i == 0) continue;
    std::optional<std::string>* slot = nullptr;
    absl::string_view needs;
    if (kw == "proto") {
      slot = &c.proto;
      needs = "a protocol (tcp, udp, any or icmp)";
    } else if (kw == "to") {
      after_from = false;
      slot = &c.to;
      needs = kToNeeds;
    } else if (kw == "port") {
      if (after_from) return SourcePortError(words, i);
      slot = &c.port;
      needs = "a port, port range or service";
    } else if (kw == "from") {
      if (i + 1 < words.size() &&
          (words[i + 1] == "any" || words[i + 1] == "anywhere")) {
        ++i;
        after_from = true;
        continue;
      }
      return absl::InvalidArgumentError(
          "'from' only takes 'any': rules match the destination, the source "
          "is always this host");
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected word '", kw, "'; expected proto, to, port or comment"));
    }
    if (slot->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("'", kw, "' given twice"));
    }
    if (i + 1 >= words.size() || IsLongFormKeyword(words[i + 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", kw, "' needs ", needs, " after it"));
    }
    *slot = words[++i];
  }
  return c;
}

absl::StatusOr<Rule> ParseLongForm(Action action,
                                   absl::Span<const std::string> words) {
  EGRESS_ASSIGN_OR_RETURN(Rule rule, RuleWithComment(action, words));
  EGRESS_ASSIGN_OR_RETURN(LongFormClauses clauses, TakeClauses(words));
  const auto& proto = clauses.proto;
  const auto& to = clauses.to;
  const auto& port = clauses.port;
  if (!proto && !to && !port) {
    return absl::InvalidArgumentError(
        "'out' needs a rule after it, e.g. 'out proto tcp to 10.0.0.5 port "
        "25'");
  }
  std::vector<Proto> protos = {Proto::kTcp, Proto::kUdp};
  if (proto && *proto == "tcp") protos = {Proto::kTcp};
  if (proto && *proto == "udp") protos = {Proto::kUdp};
  if (proto && *proto != "tcp" && *proto != "udp" && *proto != "any" &&
      *proto != "icmp") {
    return absl::InvalidArgumentError(
        absl::StrCat("bad protocol '", *proto,
                     "' after 'proto': expected tcp, udp, any or icmp"));
  }
  const bool icmp = proto && *proto == "icmp";
  if (port) {
    if (icmp) {
      return absl::InvalidArgumentError(
          absl::StrCat("icmp has no ports: 'port ", *port, "'"));
    }
    if (port->find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad port '", *port, "': give the protocol with 'proto'"));
    }
    EGRESS_ASSIGN_OR_RETURN(const std::vector<PortProto> ports,
                            PortsFor(*port, protos, *port));
    rule.ports.assign(ports.begin(), ports.end());
    rule.spec = protos.size() == 1
                    ? absl::StrCat(*port, "/", ProtoName(protos[0]))
                    : *port;
  } else if (icmp) {
    rule.spec = "icmp";
    rule.ports = {{Proto::kIcmp}};
  } else if (protos.size() == 1) {
    rule.spec = ProtoName(protos[0]);
    rule.ports = {{protos[0], 0, 65535}};
  } else {
    rule.spec = "any";
    const std::vector<PortProto> any = AnyPorts();
    rule.ports.assign(any.begin(), any.end());
  }
  std::vector<std::string> dest;
  if (to) dest.push_back(*to);
  EGRESS_RETURN_IF_ERROR(ParseDestinations(dest, &rule));
  return rule;
}

}  // namespace

// `list` prints a comment as it is: a newline in one could fake a rule
// line, an escape sequence could rewrite the terminal. Refused here, where
// the person typing it can fix it. C1 controls (U+0080-U+009F) count too:
// some terminals act on them as on ESC sequences.
absl::Status CheckCommentText(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int code = -1;
    if (c < 0x20 || c == 0x7f) {
      code = c;
    } else if (c == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) code = next;
    }
    if (code >= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the comment holds a control character (U+%04X) at byte %d; a "
          "comment is one line of printable text",
          code, i + 1));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> ParsePort(absl::string_view word) {
  std::string why;
  const std::optional<uint16_t> port = PortNumber(word, &why);
  if (!port) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port '", word, "': ", why));
  }
  return *port;
}

namespace {

// A word with a protocol of its own per item: "443/tcp,53/udp", "tcp,udp",
// "443/tcp,icmp" (what `list` prints for a rule of a policy file whose
// ports no UFW word holds, RuleSpecText). UFW's "80,443/tcp" (one protocol
// for the list) is not one: only its last item has a protocol.
bool IsMixedList(absl::string_view word) {
  if (word.find(',') == absl::string_view::npos) return false;
  int slashes = 0;
  for (absl::string_view item : absl::StrSplit(word, ',')) {
    if (item == "tcp" || item == "udp" || item == "icmp") return true;
    if (item.find('/') != absl::string_view::npos) ++slashes;
  }
  return slashes > 1;
}

// The ports of a mixed list (IsMixedList): each item as a SPEC of its own,
// "tcp", "udp", "icmp" or PORTS/PROTO; a port without its protocol is
// refused, as it could mean tcp and udp or the protocol after it (UFW).
absl::StatusOr<std::vector<PortProto>> ParseMixedList(absl::string_view word) {
  std::vector<PortProto> out;
  for (absl::string_view item : absl::StrSplit(word, ',')) {
    if (!item.empty() && absl::ascii_isdigit(item[0]) &&
        item.find('/') == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", item, "' in '", word,
          "' has no protocol: in a list of several protocols, give each port "
          "its own (",
          item, "/tcp, ", item, "/udp or ", item, "/any)"));
    }
    if (item == "any" || item == "raw" || item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "' cannot be part of a list: '", word, "'"));
    }
    EGRESS_ASSIGN_OR_RETURN(std::vector<PortProto> ports, ParseSpec(item));
    for (const PortProto& pp : ports) AddUnique(out, pp);
  }
  // tcp, then udp, then icmp, each in the order typed.
  std::stable_sort(
      out.begin(), out.end(),
      [](const PortProto& a, const PortProto& b) { return a.proto < b.proto; });
  return out;
}

}  // namespace

absl::StatusOr<std::vector<PortProto>> ParseSpec(absl::string_view word) {
  if (IsMixedList(word)) return ParseMixedList(word);
  if (word == "any") return AnyPorts();
  if (word == "icmp") return std::vector<PortProto>{{Proto::kIcmp}};
  if (word == "raw") return std::vector<PortProto>{{Proto::kRaw}};
  if (word == "tcp") return std::vector<PortProto>{{Proto::kTcp, 0, 65535}};
  if (word == "udp") return std::vector<PortProto>{{Proto::kUdp, 0, 65535}};
  if (Cidr::Parse(word).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", word,
                     "' is an address; put a service or port first, e.g. "
                     "'any ",
                     word, "'"));
  }
  absl::string_view body = word;
  std::vector<Proto> protos = {Proto::kTcp, Proto::kUdp};
  if (const size_t slash = word.find('/'); slash != absl::string_view::npos) {
    body = word.substr(0, slash);
    const absl::string_view proto = word.substr(slash + 1);
    if (proto == "tcp") {
      protos = {Proto::kTcp};
    } else if (proto == "udp") {
      protos = {Proto::kUdp};
    } else if (proto != "any") {
      return absl::InvalidArgumentError(
          absl::StrCat("bad protocol '", proto, "' in '", word,
                       "': expected tcp, udp or any"));
    }
  }
  return PortsFor(body, protos, word);
}

absl::StatusOr<Rule> ParseRuleWords(Action action,
                                    absl::Span<const std::string> words) {
  if (words.empty()) {
    return absl::InvalidArgumentError(
        "empty rule: expected a service, port, 'any', 'icmp' or 'raw'");
  }
  if (words[0] == "unix") return ParseUnixForm(action, words.subspan(1));
  if (words[0] == "out" && words.size() > 1 && words[1] == "unix") {
    return ParseUnixForm(action, words.subspan(2));
  }
  EGRESS_RETURN_IF_ERROR(CheckNoInterface(words));
  if (words[0] == "out" && words.size() > 1 && !IsLongFormKeyword(words[1]) &&
      words[1] != "comment") {
    return ParseShortForm(action, words.subspan(1));
  }
  if (IsLongFormKeyword(words[0])) {
    return ParseLongForm(action, words);
  }
  return ParseShortForm(action, words);
}

}  // namespace egress::policy
