#include "userspace/policy/policy_writer.h"

#include <algorithm>
#include <regex>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "userspace/policy/label_selector.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/policy/services.h"
#include "yaml-cpp/yaml.h"

namespace egress::policy {
namespace {

// One entry of a rule's `ports:` list.
struct PortEntry {
  std::string service;   // `port: NAME`, or "" for a numeric entry
  uint16_t lo = 0;       // numeric `port:`; 0 = not written
  uint16_t hi = 0;       // `endPort:` when above lo
  std::string protocol;  // "TCP", "UDP", "ICMP" or "" (not written)
};

// One rule as it is laid out in the file.
struct YamlRule {
  std::string name;
  std::string comment;
  bool raw = false;
  std::vector<std::string> unix_paths;  // a unix rule: `unix:` alone
  std::vector<Cidr> to;
  std::vector<std::string> names;  // one `- domainNames: [...]` peer
  bool any_ports = false;          // no `ports:`: every tcp/udp port and icmp
  std::vector<PortEntry> ports;
};

bool PortLess(const PortProto& a, const PortProto& b) {
  return std::tie(a.proto, a.lo, a.hi) < std::tie(b.proto, b.lo, b.hi);
}

bool Contains(const std::vector<PortProto>& set, const PortProto& pp) {
  return std::find(set.begin(), set.end(), pp) != set.end();
}

// Every tcp and udp port plus icmp: what a rule without `ports:` means.
bool IsAnyPorts(const std::vector<PortProto>& sorted_unique) {
  const std::vector<PortProto> any = {
      {Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
  return sorted_unique == any;
}

std::string ProtocolWord(Proto proto) {
  return absl::AsciiStrToUpper(ProtoName(proto));
}

// Service entries for the service words of `spec`, removing the ports they
// cover from `remaining`. `all` is the rule's whole port set: a service entry
// is written only when every port it expands to is in the rule.
void AddServiceEntries(absl::string_view spec,
                       const std::vector<PortProto>& all,
                       std::vector<PortProto>* remaining,
                       std::vector<PortEntry>* entries) {
  auto all_in = [&](const std::vector<PortProto>& ports) {
    return std::all_of(ports.begin(), ports.end(),
                       [&](const PortProto& pp) { return Contains(all, pp); });
  };
  auto any_left = [&](const std::vector<PortProto>& ports) {
    return std::any_of(ports.begin(), ports.end(), [&](const PortProto& pp) {
      return Contains(*remaining, pp);
    });
  };
  auto take = [&](const std::vector<PortProto>& ports) {
    for (const PortProto& pp : ports) {
      remaining->erase(std::remove(remaining->begin(), remaining->end(), pp),
                       remaining->end());
    }
  };
  for (absl::string_view word : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    word = absl::StripAsciiWhitespace(word);
    const std::pair<std::string, std::string> parts =
        absl::StrSplit(word, absl::MaxSplits('/', 1));
    const std::string& base = parts.first;
    const std::string suffix = absl::AsciiStrToLower(parts.second);
    if (base.empty() ||
        absl::ascii_isdigit(static_cast<unsigned char>(base[0])) ||
        base == "any" || base == "tcp" || base == "udp" || base == "icmp" ||
        base == "raw" || base == "unix") {
      continue;
    }
    std::vector<Proto> protos;
    if (suffix.empty()) {
      protos = {Proto::kTcp, Proto::kUdp};
    } else if (suffix == "tcp") {
      protos = {Proto::kTcp};
    } else if (suffix == "udp") {
      protos = {Proto::kUdp};
    } else {
      continue;
    }
    absl::StatusOr<std::vector<PortProto>> expansion = LookupService(base);
    if (!expansion.ok() || expansion->empty()) continue;
    // Without a protocol, `port: NAME` means every protocol of the service.
    if (suffix.empty() && all_in(*expansion) && any_left(*expansion)) {
      entries->push_back({base, 0, 0, ""});
      take(*expansion);
      continue;
    }
    for (Proto proto : protos) {
      std::vector<PortProto> part;
      for (const PortProto& pp : *expansion) {
        if (pp.proto == proto) part.push_back(pp);
      }
      if (part.empty() || !all_in(part) || !any_left(part)) continue;
      entries->push_back({base, 0, 0, ProtocolWord(proto)});
      take(part);
    }
  }
}

// The `ports:` entries for a rule's non-raw ports; sets any_ports instead
// when the set is the "no ports" meaning.
void BuildPorts(const Rule& rule, std::vector<PortProto> ports, YamlRule* out) {
  std::sort(ports.begin(), ports.end(), PortLess);
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  if (IsAnyPorts(ports)) {
    out->any_ports = true;
    return;
  }
  std::vector<PortProto> remaining = ports;
  AddServiceEntries(rule.spec, ports, &remaining, &out->ports);
  for (const PortProto& pp : remaining) {
    switch (pp.proto) {
      case Proto::kTcp:
      case Proto::kUdp: {
        if (pp.AllPorts()) {
          out->ports.push_back({"", 0, 0, ProtocolWord(pp.proto)});
          break;
        }
        // Files have ports 1-65535; port 0 cannot be written.
        const uint16_t lo = std::max<uint16_t>(pp.lo, 1);
        if (pp.hi < lo) break;
        out->ports.push_back({"", lo, pp.hi, ProtocolWord(pp.proto)});
        break;
      }
      case Proto::kIcmp:
        out->ports.push_back({"", 0, 0, "ICMP"});
        break;
      case Proto::kRaw:
      case Proto::kUnix:  // written as `unix:` (AppendRule)
        break;
    }
  }
}

// Whether `s` written as a plain scalar could be read as anything but this
// string. yaml-cpp quotes what YAML 1.2 would misread, but tools still read
// YAML 1.1 (PyYAML, Go's yaml.v2): there a plain yes, off, 1:20, 0755 or
// 2024-01-01 is a bool, a number or a date. And a plain scalar may not
// start with an indicator for a strict reader: PyYAML refuses
// "{cidr: ::1/128}" ("expected the node content, but found ':'").
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (absl::string_view("-?:,[]{}#&*!|>'\"%@`=<").find(s[0]) !=
      absl::string_view::npos) {
    return true;
  }
  static constexpr absl::string_view kWords[] = {
      "y",  "Y",    "yes",  "Yes",  "YES",   "n",     "N",     "no",   "No",
      "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",   "On",
      "ON", "off",  "Off",  "OFF",  "~",     "null",  "Null",  "NULL",
  };
  for (absl::string_view w : kWords) {
    if (s == w) return true;
  }
  const char c = s[0];
  if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '+' &&
      c != '.') {
    return false;
  }
  // YAML 1.1's int (binary, octal, hex, sexagesimal, with '_'), float
  // (with 1.2's exponent without a dot, .inf, .nan) and timestamp.
  static const std::regex kNumberOrDate(
      "[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])*)"
      "|[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?"
      "|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
      "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*"
      "|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?([Tt ].*)?");
  return std::regex_match(s, kNumberOrDate);
}

// A string scalar, double-quoted when NeedsQuotes: `out << Text(s)`.
struct Text {
  const std::string& s;
};
YAML::Emitter& operator<<(YAML::Emitter& out, Text t) {
  if (NeedsQuotes(t.s)) out << YAML::DoubleQuoted;
  return out << t.s;
}

std::string CidrText(const Cidr& c) {
  const bool host = (c.family == 4 && c.prefix_len == 32) ||
                    (c.family == 6 && c.prefix_len == 128);
  // ToString leaves a host's prefix out; policy files spell it out, as in
  // policies/*.yaml.
  return host ? absl::StrCat(c.ToString(), "/", c.prefix_len) : c.ToString();
}

// `text` with each control character as '?': C0 (below 0x20; a tab kept
// when `keep_tab`), DEL and C1 (U+0080-U+009F, two bytes in UTF-8), the
// characters CheckCommentText refuses. YAML allows none of them in a stream
// but tab and U+0085, and U+0085 (NEL) is a line break to a YAML 1.1 reader.
std::string WithoutControls(absl::string_view text, bool keep_tab) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u == 0xc2 && i + 1 < text.size() &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out.push_back('?');
      ++i;
    } else if ((u < 0x20 && !(keep_tab && u == '\t')) || u == 0x7f) {
      out.push_back('?');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string RuleComment(const Rule& rule, const std::string& name) {
  std::string comment = rule.comment;
  // ParsePolicy joins `name` and `comment` into "NAME: COMMENT" (or NAME);
  // undo that so a policy read and written again does not grow.
  if (!name.empty()) {
    if (comment == name) {
      comment.clear();
    } else if (absl::StartsWith(comment, name + ": ")) {
      comment.erase(0, name.size() + 2);
    }
  }
  if (!rule.host.empty()) {
    comment = comment.empty()
                  ? absl::StrCat("host ", rule.host)
                  : absl::StrCat(comment, " (host ", rule.host, ")");
  }
  // ParsePolicy refuses control characters in a comment (CheckCommentText:
  // list prints it raw); a rule added some other way may hold them, and its
  // export must still load.
  return WithoutControls(comment, /*keep_tab=*/false);
}

// Appends "INDENT# LINE" lines. A line break inside a comment starts a new
// comment line, and control characters (which YAML does not allow in a
// stream) become '?'.
void AppendComment(const std::vector<std::string>& lines,
                   absl::string_view indent, std::string* text) {
  for (const std::string& line : lines) {
    const std::string unix_line = absl::StrReplaceAll(line, {{"\r\n", "\n"}});
    for (absl::string_view part :
         absl::StrSplit(unix_line, absl::ByAnyChar("\r\n"))) {
      const std::string clean = WithoutControls(part, /*keep_tab=*/true);
      absl::StrAppend(text, indent, clean.empty() ? "#" : "# ", clean, "\n");
    }
  }
}

// Appends the emitter's text, each line prefixed with `first` (the first
// line) or `rest` (the others). Indenting a whole block-style document keeps
// it valid: yaml-cpp writes multi-line strings as escaped double-quoted
// scalars, so no line's meaning depends on its column.
void AppendIndented(const YAML::Emitter& out, absl::string_view first,
                    absl::string_view rest, std::string* text) {
  bool is_first = true;
  for (absl::string_view line : absl::StrSplit(out.c_str(), '\n')) {
    absl::StrAppend(text, is_first ? first : rest, line, "\n");
    is_first = false;
  }
}

void EmitRule(const YamlRule& rule, std::string* text) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  if (!rule.name.empty())
    out << YAML::Key << "name" << YAML::Value << Text{rule.name};
  if (!rule.comment.empty()) {
    out << YAML::Key << "comment" << YAML::Value << Text{rule.comment};
  }
  if (rule.raw) out << YAML::Key << "raw" << YAML::Value << true;
  if (!rule.unix_paths.empty()) {
    out << YAML::Key << "unix" << YAML::Value << YAML::BeginSeq;
    for (const std::string& p : rule.unix_paths) out << Text{p};
    out << YAML::EndSeq;
  }
  if (!rule.to.empty() || !rule.names.empty()) {
    out << YAML::Key << "to" << YAML::Value << YAML::BeginSeq;
    for (const Cidr& c : rule.to) {
      out << YAML::BeginMap << YAML::Key << "ipBlock" << YAML::Value
          << YAML::Flow << YAML::BeginMap << YAML::Key << "cidr" << YAML::Value
          << Text{CidrText(c)} << YAML::EndMap << YAML::EndMap;
    }
    if (!rule.names.empty()) {
      out << YAML::BeginMap << YAML::Key << "domainNames" << YAML::Value
          << YAML::Flow << YAML::BeginSeq;
      for (const std::string& n : rule.names) out << YAML::DoubleQuoted << n;
      out << YAML::EndSeq << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (!rule.raw && !rule.any_ports && rule.unix_paths.empty()) {
    out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
    for (const PortEntry& e : rule.ports) {
      out << YAML::BeginMap;
      if (!e.service.empty()) {
        out << YAML::Key << "port" << YAML::Value << Text{e.service};
      } else if (e.lo != 0) {
        out << YAML::Key << "port" << YAML::Value << e.lo;
        if (e.hi > e.lo) out << YAML::Key << "endPort" << YAML::Value << e.hi;
      }
      if (!e.protocol.empty()) {
        out << YAML::Key << "protocol" << YAML::Value << e.protocol;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  AppendIndented(out, "  - ", "    ", text);
}

// Appends one Rule (one or two YAML rules, or a comment saying why it is
// left out) to a rule list's text. Returns the number of YAML rules written.
int AppendRule(const Rule& rule, const std::string& name,
               const std::vector<std::string>& comment_lines,
               std::string* text) {
  AppendComment(comment_lines, "  ", text);
  const std::string comment = RuleComment(rule, name);
  if (!rule.unix_paths.empty()) {
    YamlRule r;
    r.name = name;
    r.comment = comment;
    r.unix_paths = rule.unix_paths;
    EmitRule(r, text);
    return 1;
  }
  std::vector<PortProto> other;
  bool raw = false;
  for (const PortProto& pp : rule.ports) {
    if (pp.proto == Proto::kRaw) {
      raw = true;
    } else {
      other.push_back(pp);
    }
  }
  std::string next_name = name;
  if (raw) {
    YamlRule r;
    r.name = name;
    r.comment = comment;
    r.raw = true;
    EmitRule(r, text);
    if (other.empty()) return 1;
    next_name.clear();  // names are unique; the second part goes without
  }
  YamlRule r;
  r.name = next_name;
  r.comment = comment;
  for (const Cidr& c : rule.destinations) {
    if (std::find(r.to.begin(), r.to.end(), c) == r.to.end()) r.to.push_back(c);
  }
  r.names = rule.names;
  BuildPorts(rule, other, &r);
  if (!r.any_ports && r.ports.empty()) {
    // Without ports the rule would mean "every port"; it matches nothing.
    AppendComment(
        {absl::StrCat("left out: rule ", name.empty() ? comment : name,
                      " has no port a policy file can name, so it "
                      "matches nothing")},
        "  ", text);
    return raw ? 1 : 0;
  }
  EmitRule(r, text);
  return raw ? 2 : 1;
}

std::string EmitHead(const PolicyDocument& doc) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value
      << std::string(kPolicyApiVersion);
  out << YAML::Key << "kind" << YAML::Value << std::string(kPolicyKind);
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << Text{doc.name};
  if (!doc.annotations.empty()) {
    out << YAML::Key << "annotations" << YAML::Value << YAML::BeginMap;
    for (const auto& [key, value] : doc.annotations) {
      out << YAML::Key << Text{key} << YAML::Value << Text{value};
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "target" << YAML::Value << YAML::BeginMap;
  // Pods in NetworkPolicy's shape: the namespace, then the pod or selector.
  if (doc.target.kind == TargetSource::kPod) {
    PodRef pod = ParsePodRef(doc.target.value).value_or(PodRef{});
    out << YAML::Key << "namespace" << YAML::Value << Text{pod.ns};
  } else if (doc.target.kind == TargetSource::kPodSelector) {
    PodSelector selector =
        ParsePodSelector(doc.target.value).value_or(PodSelector{});
    out << YAML::Key << "namespace" << YAML::Value << Text{selector.ns};
  }
  out << YAML::Key << TargetKindName(doc.target.kind) << YAML::Value;
  if (doc.target.kind == TargetSource::kPod) {
    out << Text{ParsePodRef(doc.target.value).value_or(PodRef{}).name};
  } else if (doc.target.kind == TargetSource::kPodSelector) {
    PodSelector selector =
        ParsePodSelector(doc.target.value).value_or(PodSelector{});
    if (selector.labels.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;  // every pod
    } else {
      out << YAML::BeginMap << YAML::Key << "matchLabels" << YAML::Value
          << YAML::BeginMap;
      for (const auto& [key, value] : selector.labels) {
        out << YAML::Key << Text{key} << YAML::Value << Text{value};
      }
      out << YAML::EndMap << YAML::EndMap;
    }
  } else if (doc.target.kind == TargetSource::kSelector) {
    // The selector's canonical text was checked when it was parsed.
    out << YAML::BeginMap << YAML::Key << "matchLabels" << YAML::Value
        << YAML::BeginMap;
    for (const auto& [key, value] :
         ParseLabelSelector(doc.target.value).value_or(Labels{})) {
      out << YAML::Key << Text{key} << YAML::Value << Text{value};
    }
    out << YAML::EndMap << YAML::EndMap;
  } else {
    out << Text{doc.target.value};
  }
  out << YAML::EndMap;
  out << YAML::Key << "mode" << YAML::Value << ModeName(doc.mode);
  out << YAML::Key << "logging" << YAML::Value << LoggingLevelName(doc.logging);
  out << YAML::EndMap;
  out << YAML::EndMap;
  std::string text;
  AppendIndented(out, "", "", &text);
  return text;
}

}  // namespace

std::string WritePolicy(const PolicyDocument& doc) {
  std::string text;
  AppendComment(doc.header_comment, "", &text);
  // spec is the head's last key, so the rule lists appended below (indented
  // by two) belong to it.
  absl::StrAppend(&text, EmitHead(doc));
  for (Action action : {Action::kAllow, Action::kDeny}) {
    std::string rules;
    size_t count = 0;
    int written = 0;
    for (size_t i = 0; i < doc.rules.size(); ++i) {
      if (doc.rules[i].action != action) continue;
      ++count;
      const std::string& name =
          i < doc.rule_names.size() ? doc.rule_names[i] : doc.rules[i].name;
      const std::vector<std::string> comments =
          i < doc.rule_comments.size() ? doc.rule_comments[i]
                                       : std::vector<std::string>();
      written += AppendRule(doc.rules[i], name, comments, &rules);
    }
    const bool allow = action == Action::kAllow;
    // Deny rules are optional; an empty allow list is written as [] so the
    // file says plainly that nothing is allowed.
    if (!allow && count == 0) continue;
    absl::StrAppend(&text, "  ", allow ? "egress" : "egressDeny", ":",
                    written > 0 ? "" : " []", "\n", rules);
  }
  return text;
}

}  // namespace egress::policy
