#include "userspace/policy/policy_file.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/utf8.h"
#include "userspace/policy/cidr_set.h"
#include "userspace/policy/label_selector.h"
#include "userspace/policy/name_rules.h"
#include "userspace/policy/names.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/policy/policy_file_path.h"
#include "userspace/policy/services.h"
#include "userspace/policy/spec.h"
#include "userspace/policy/target_values.h"
#include "userspace/policy/unix_rules.h"
#include "userspace/policy/word_table.h"
#include "userspace/policy/yaml_tree.h"

namespace egress::policy {
namespace {

constexpr size_t kMaxFileSize = 16 << 20;  // 100,000 rules fit

// Fields that are not ours but that people will paste from NetworkPolicy,
// Cilium or the conventions draft, with the reason they are refused.
struct Hint {
  absl::string_view field;
  absl::string_view reason;
};
constexpr Hint kHints[] = {
    {"podSelector",
     "selects pods, which a host enforcer cannot see; use ipBlock"},
    {"namespaceSelector",
     "selects namespaces, which a host enforcer cannot see; use ipBlock"},
    {"toFQDNs",
     "use to: [{domainNames: [\"api.example.com\", \"*.example.com\"]}]"},
    {"toCIDR", "use to: [{ipBlock: {cidr: ...}}]"},
    {"toCIDRSet", "use to: [{ipBlock: {cidr: ..., except: [...]}}]"},
    {"toEntities", "use ipBlock"},
    {"toPorts", "use ports: [{port: ..., protocol: ...}]"},
    {"defaultAction",
     "the default is always deny; for a denylist write an allow rule with no "
     "to and no ports, plus egressDeny rules"},
    {"allowLoopback",
     "loopback is not exempt; allow it with an egress rule to 127.0.0.0/8 "
     "and ::1/128"},
    {"policyTypes", "a policy only has egress rules"},
    {"ingress", "egress only controls outgoing connections"},
};

// The YAML field of each way to name a target; kPid has none (row 0).
constexpr WordOf<TargetSource> kTargetFields[] = {
    {TargetSource::kCgroup, "cgroupPath"},
    {TargetSource::kUnit, "systemdUnit"},
    {TargetSource::kPattern, "cgroupPattern"},
    {TargetSource::kUser, "user"},
    {TargetSource::kContainer, "container"},
    {TargetSource::kSelector, "selector"},
    {TargetSource::kPod, "pod"},
    {TargetSource::kPodSelector, "podSelector"},
};

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

SourceLocation ToLocation(const yaml::Position& at) {
  if (at.line <= 0 || at.column <= 0) return {};
  return {at.line, at.column};
}

std::string LocationText(const std::string& file, SourceLocation loc) {
  if (loc.line == 0) return file;
  return absl::StrCat(file, ":", loc.line, ":", loc.column);
}

std::string Describe(const yaml::Node& node) {
  switch (node.Type()) {
    case yaml::NodeType::kNull:
      return "nothing";
    case yaml::NodeType::kScalar:
      return Quote(node.Scalar());
    case yaml::NodeType::kSequence:
      return "a list";
    case yaml::NodeType::kMap:
      return "a mapping";
  }
  return "an undefined value";
}

// The closest of `candidates` (strings or string_views) within edit
// distance 2, or "".
template <typename Words>
std::string Suggest(absl::string_view word, const Words& candidates) {
  int best = 3;
  std::string suggestion;
  for (const auto& c : candidates) {
    const int d = EditDistance(word, c);
    if (d < best) {
      best = d;
      suggestion = std::string(c);
    }
  }
  return suggestion;
}

// Recursive "**"-aware component matcher for CgroupPatternMatches.
bool MatchComponents(const std::vector<std::string>& pat, size_t pi,
                     const std::vector<std::string>& path, size_t i) {
  if (pi == pat.size()) return i == path.size();
  if (pat[pi] == "**") {
    for (size_t k = i; k <= path.size(); ++k) {
      if (MatchComponents(pat, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (i == path.size()) return false;
  if (fnmatch(pat[pi].c_str(), path[i].c_str(), FNM_NOESCAPE) != 0) {
    return false;
  }
  return MatchComponents(pat, pi + 1, path, i + 1);
}

// A ports entry's `protocol`.
struct PortProtocol {
  std::optional<Proto> proto;  // tcp or udp; nullopt = both
  bool icmp = false;
  std::string word;  // "tcp", "udp", "any", "icmp" or "" (not given)
  // The suffix of the grammar word: "/tcp", "/udp", "/any" or "".
  std::string Suffix() const { return word.empty() ? "" : "/" + word; }
};

// Adds lo-hi for tcp, udp or both, as `protocol` says.
void AddRange(const PortProtocol& protocol, uint16_t lo, uint16_t hi,
              PortList* ports) {
  if (protocol.proto != Proto::kUdp) ports->push_back({Proto::kTcp, lo, hi});
  if (protocol.proto != Proto::kTcp) ports->push_back({Proto::kUdp, lo, hi});
}

// Hashes a Cidr by value, for sets of them.
struct CidrHash {
  size_t operator()(const Cidr& c) const {
    return absl::HashOf(c.family, c.addr, c.prefix_len);
  }
};

// Drops every item equal to an earlier one, in place (a rule's few ports
// and words: no hashing, no copy).
template <typename List>
void DropRepeats(List* items) {
  auto kept = items->begin();
  for (auto it = items->begin(); it != items->end(); ++it) {
    if (std::find(items->begin(), kept, *it) != kept) continue;
    if (kept != it) *kept = std::move(*it);
    ++kept;
  }
  items->erase(kept, items->end());
}

// A mapping's fields by name in file order, each with its key and value
// node. A mapping has a few fields and a policy file hundreds of thousands
// of mappings: the fields are kept in place, searched in order, and cost no
// allocation. GetFields admits only distinct names from a list of at most
// kMaxFields. The names point into the yaml::Document, which outlives the
// Fields.
class Fields {
 public:
  // The most fields a mapping of a policy file may have (spec.target's).
  static constexpr size_t kMaxFields = 9;
  using KeyValue = std::pair<yaml::Node, yaml::Node>;
  using Entry = std::pair<absl::string_view, KeyValue>;
  using const_iterator = const Entry*;

  size_t count(absl::string_view name) const { return find(name) != end(); }
  const_iterator find(absl::string_view name) const {
    return std::find_if(begin(), end(),
                        [&](const Entry& e) { return e.first == name; });
  }
  // The field's key and value; two null nodes for a field not given.
  const KeyValue& operator[](absl::string_view name) const {
    static const KeyValue kMissing;
    const const_iterator it = find(name);
    return it == end() ? kMissing : it->second;
  }
  const_iterator begin() const { return entries_.data(); }
  const_iterator end() const { return entries_.data() + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // At most kMaxFields times.
  void Add(absl::string_view name, const yaml::Node& key,
           const yaml::Node& value) {
    entries_[size_++] = Entry(name, KeyValue(key, value));
  }

 private:
  std::array<Entry, kMaxFields> entries_;
  size_t size_ = 0;
};

// One parse of one file. Every method returns InvalidArgument
// "FILE:L:C: PATH: reason".
class Parser {
 public:
  explicit Parser(const std::string& file) : file_(file) {}

  absl::StatusOr<Policy> Parse(absl::string_view text);

 private:
  absl::Status Error(const yaml::Node& at, const FieldPath& path,
                     absl::string_view reason) const {
    return ErrorAt(ToLocation(at.Mark()), path, reason);
  }
  absl::Status ErrorAt(SourceLocation loc, const FieldPath& path,
                       absl::string_view reason) const {
    std::string message = LocationText(file_, loc);
    message.append(": ");
    const size_t before_path = message.size();
    path.AppendTo(&message);
    if (message.size() > before_path) message.append(": ");
    message.append(reason.data(), reason.size());
    return absl::InvalidArgumentError(message);
  }

  // Checks that `node` is a mapping whose keys are distinct scalars from
  // `allowed`, and collects them (key node, value node) into `out`.
  absl::Status GetFields(const yaml::Node& node, const FieldPath& path,
                         absl::Span<const absl::string_view> allowed,
                         Fields* out) const;
  absl::StatusOr<std::string> GetScalar(const yaml::Node& node,
                                        const FieldPath& path) const;
  // GetScalar without a copy: valid while the document lives.
  absl::StatusOr<absl::string_view> GetText(const yaml::Node& node,
                                            const FieldPath& path) const;
  // Refuses field `key` of `f` (at `path`) given with no value (nothing,
  // "~" or "null"), where reading it as empty would widen what the policy
  // covers: "KEY: has no value; omit the key (or write EMPTY) to mean
  // MEANING".
  absl::Status RefuseNoValue(const Fields& f, absl::string_view key,
                             const FieldPath& path, absl::string_view meaning,
                             absl::string_view empty = "[]") const {
    if (!f.count(key) || !f[key].second.IsNull()) return absl::OkStatus();
    return Error(f[key].first, path.Field(key),
                 absl::StrCat(key, ": has no value; omit the key (or write ",
                              empty, ") to mean ", meaning));
  }
  // The number of a sequence's elements; null counts as empty.
  absl::StatusOr<size_t> GetListSize(const yaml::Node& node,
                                     const FieldPath& path) const;
  absl::StatusOr<bool> GetBool(const yaml::Node& node,
                               const FieldPath& path) const;
  // A scalar read by one of vocabulary.h's parsers; the error lists
  // `choices` ("expected enforce or audit, got \"block\"").
  template <typename T>
  absl::StatusOr<T> ParseWord(const yaml::Node& node, const FieldPath& path,
                              absl::StatusOr<T> (*parse)(absl::string_view),
                              absl::string_view choices) const {
    EGRESS_ASSIGN_OR_RETURN(std::string word, GetScalar(node, path));
    absl::StatusOr<T> parsed = parse(word);
    if (!parsed.ok()) {
      return Error(node, path,
                   absl::StrCat("expected ", choices, ", got ", Quote(word)));
    }
    return parsed;
  }

  // Calls `parse(item, "PATH[i]")` for each element of the list at `node`
  // (null = empty), stopping at the first error.
  template <typename ParseItem>
  absl::Status ForEachItem(const yaml::Node& node, const FieldPath& path,
                           ParseItem parse) const {
    EGRESS_ASSIGN_OR_RETURN(const size_t n, GetListSize(node, path));
    for (size_t i = 0; i < n; ++i) {
      EGRESS_RETURN_IF_ERROR(parse(node.Child(i), path.Item(i)));
    }
    return absl::OkStatus();
  }

  absl::Status ParseMetadata(const yaml::Node& node, const FieldPath& path,
                             Policy* policy) const;
  absl::Status ParseSpec(const yaml::Node& node, const FieldPath& path,
                         Policy* policy) const;
  absl::Status ParseTarget(const yaml::Node& node, const FieldPath& path,
                           Policy* policy) const;
  // {namespace: NS, podSelector: {...}} or {namespace: NS, pod: NAME}.
  absl::Status ParsePodTarget(const Fields& f, const FieldPath& path,
                              Policy* policy) const;
  // selector: {matchLabels: {key: value, ...}} -> "key=value,..." (sorted).
  absl::StatusOr<std::string> ParseSelector(const yaml::Node& node,
                                            const FieldPath& path) const;
  absl::StatusOr<std::string> ParseUnitName(const yaml::Node& node,
                                            const FieldPath& path) const;
  absl::Status ParseRules(const yaml::Node& node, const FieldPath& path,
                          Action action, Policy* policy,
                          std::map<std::string, SourceLocation>* names) const;
  // Into *rule, a default Rule: in place in Policy::rules (a Rule is over
  // 200 bytes, and a file has up to 100,000 of them).
  absl::Status ParseRule(const yaml::Node& node, const FieldPath& path,
                         Action action, std::string* name, Rule* rule) const;
  // `unix`: a unix rule's addresses (unix_rules.h), standing alone.
  absl::Status ParseUnixPaths(Fields& f, const FieldPath& path,
                              Rule* rule) const;
  // `name` and `comment`: the rule's name into `name`, Rule::comment.
  absl::Status ParseNameAndComment(Fields& f, const FieldPath& path,
                                   std::string* name, Rule* rule) const;
  // `to`: every ipBlock, in file order, without duplicates.
  absl::Status ParseDestinations(const yaml::Node& node, const FieldPath& path,
                                 Rule* rule) const;
  // `ports` (if given) and `icmp`: Rule::ports and Rule::spec.
  absl::Status ParsePorts(Fields& f, const FieldPath& path, bool icmp,
                          Rule* rule) const;
  // One peer: an ipBlock into Rule::destinations, or domainNames into
  // Rule::names.
  absl::Status ParsePeer(const yaml::Node& node, const FieldPath& path,
                         Rule* rule) const;
  absl::Status ParseDomainNames(const yaml::Node& node, const FieldPath& path,
                                Rule* rule) const;
  absl::StatusOr<Cidr> ParseCidr(const yaml::Node& node,
                                 const FieldPath& path) const;
  // Appends the entry's ports to `ports` and its grammar word to `words`.
  absl::Status ParsePortEntry(const yaml::Node& node, const FieldPath& path,
                              PortList* ports,
                              std::vector<std::string>* words) const;
  absl::StatusOr<PortProtocol> ParseProtocol(const yaml::Node& node,
                                             const FieldPath& path) const;
  // `port` (and `endPort`) as numbers: one range.
  absl::Status ParsePortRange(Fields& f, const FieldPath& path,
                              const PortProtocol& protocol, PortList* ports,
                              std::vector<std::string>* words) const;
  // `port` as a service name: its ports of the protocol asked for.
  absl::Status ParseServicePort(Fields& f, const FieldPath& path,
                                const std::string& service,
                                const PortProtocol& protocol, PortList* ports,
                                std::vector<std::string>* words) const;
  absl::StatusOr<uint16_t> ParsePortNumber(const yaml::Node& node,
                                           const FieldPath& path,
                                           absl::string_view field) const;
  absl::StatusOr<std::string> ParseCgroupPath(const yaml::Node& node,
                                              const FieldPath& path,
                                              bool pattern) const;

  const std::string& file_;
  // ParsePorts' words, kept from rule to rule.
  mutable std::vector<std::string> words_;
};

absl::Status Parser::GetFields(const yaml::Node& node, const FieldPath& path,
                               absl::Span<const absl::string_view> allowed,
                               Fields* out) const {
  if (allowed.size() > Fields::kMaxFields) {
    return absl::InternalError(
        absl::StrCat("policy file reader: ", allowed.size(),
                     " fields allowed, more than Fields can hold"));
  }
  if (!node.IsMap()) {
    return Error(node, path,
                 absl::StrCat("expected a mapping, got ", Describe(node)));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const yaml::Node key = node.Child(2 * i);
    const yaml::Node value = node.Child(2 * i + 1);
    if (!key.IsScalar()) {
      return Error(key, path, "field names must be plain words");
    }
    const absl::string_view name = key.Text();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      for (const Hint& h : kHints) {
        if (h.field == name) {
          return Error(key, path.Field(name),
                       absl::StrCat("unsupported field: ", h.reason));
        }
      }
      std::string reason = absl::StrCat("unknown field ", Quote(name));
      const std::string suggestion = Suggest(name, allowed);
      if (!suggestion.empty()) {
        absl::StrAppend(&reason, " (did you mean ", Quote(suggestion), "?)");
      } else {
        absl::StrAppend(&reason, "; expected one of ",
                        absl::StrJoin(allowed, ", "));
      }
      return Error(key, path.Field(name), reason);
    }
    if (out->count(name)) {
      return Error(key, path.Field(name),
                   absl::StrCat("duplicate field ", Quote(name)));
    }
    out->Add(name, key, value);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::GetScalar(const yaml::Node& node,
                                              const FieldPath& path) const {
  if (!node.IsScalar()) {
    return Error(node, path,
                 absl::StrCat("expected a value, got ", Describe(node)));
  }
  return node.Scalar();
}

absl::StatusOr<absl::string_view> Parser::GetText(const yaml::Node& node,
                                                  const FieldPath& path) const {
  if (!node.IsScalar()) {
    return Error(node, path,
                 absl::StrCat("expected a value, got ", Describe(node)));
  }
  return node.Text();
}

absl::StatusOr<size_t> Parser::GetListSize(const yaml::Node& node,
                                           const FieldPath& path) const {
  if (node.IsNull()) return 0;
  if (!node.IsSequence()) {
    return Error(node, path,
                 absl::StrCat("expected a list, got ", Describe(node)));
  }
  return node.size();
}

absl::StatusOr<bool> Parser::GetBool(const yaml::Node& node,
                                     const FieldPath& path) const {
  // YAML 1.2's core schema booleans. A quoted "true" is a string to every
  // YAML reader, and a linter or generator typing the file would disagree
  // with us about what the rule says.
  if (node.IsScalar()) {
    const absl::string_view v = node.Text();
    const bool is_true = v == "true" || v == "True" || v == "TRUE";
    const bool is_false = v == "false" || v == "False" || v == "FALSE";
    if (node.Plain()) {
      if (is_true) return true;
      if (is_false) return false;
    } else if (is_true || is_false) {
      return Error(
          node, path,
          absl::StrCat("expected true or false, got the string ",
                       Describe(node), ": write ", v, " without quotes"));
    }
  }
  return Error(node, path,
               absl::StrCat("expected true or false, got ", Describe(node)));
}

absl::StatusOr<Policy> Parser::Parse(absl::string_view text) {
  absl::StatusOr<std::unique_ptr<yaml::Document>> doc =
      yaml::Document::Parse(text);
  if (!doc.ok()) {
    // "L:C: YAML syntax error: ..."
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", doc.status().message()));
  }
  std::vector<yaml::Node> docs;
  for (const yaml::Node& root : (*doc)->Roots()) {
    if (!root.IsNull()) docs.push_back(root);
  }
  if (docs.empty()) {
    return ErrorAt({1, 1}, FieldPath(), "empty file: expected an EgressPolicy");
  }
  if (docs.size() > 1) {
    return Error(docs[1], FieldPath(),
                 "only one policy per file; found a second YAML document");
  }
  const yaml::Node& root = docs[0];
  const FieldPath document;
  Fields f;
  EGRESS_RETURN_IF_ERROR(GetFields(
      root, document, {"apiVersion", "kind", "metadata", "spec"}, &f));
  for (const char* required : {"apiVersion", "kind", "metadata", "spec"}) {
    if (!f.count(required)) {
      return Error(root, document,
                   absl::StrCat("missing field ", Quote(required)));
    }
  }
  const FieldPath api_path = document.Field("apiVersion");
  EGRESS_ASSIGN_OR_RETURN(std::string api,
                          GetScalar(f["apiVersion"].second, api_path));
  if (api != kPolicyApiVersion) {
    return Error(f["apiVersion"].second, api_path,
                 absl::StrCat("expected ", Quote(kPolicyApiVersion), ", got ",
                              Quote(api)));
  }
  const FieldPath kind_path = document.Field("kind");
  EGRESS_ASSIGN_OR_RETURN(std::string kind,
                          GetScalar(f["kind"].second, kind_path));
  if (kind != kPolicyKind) {
    return Error(
        f["kind"].second, kind_path,
        absl::StrCat("expected ", Quote(kPolicyKind), ", got ", Quote(kind)));
  }
  Policy policy;
  policy.file = file_;
  EGRESS_RETURN_IF_ERROR(
      ParseMetadata(f["metadata"].second, document.Field("metadata"), &policy));
  EGRESS_RETURN_IF_ERROR(
      ParseSpec(f["spec"].second, document.Field("spec"), &policy));
  return policy;
}

absl::Status Parser::ParseMetadata(const yaml::Node& node,
                                   const FieldPath& path,
                                   Policy* policy) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(
      GetFields(node, path, {"name", "annotations", "labels"}, &f));
  if (!f.count("name")) {
    return Error(node, path, "missing field \"name\"");
  }
  const yaml::Node& name = f["name"].second;
  const FieldPath name_path = path.Field("name");
  EGRESS_ASSIGN_OR_RETURN(policy->name, GetScalar(name, name_path));
  if (absl::Status st = CheckName(policy->name); !st.ok()) {
    return Error(name, name_path, st.message());
  }
  policy->name_location = ToLocation(name.Mark());
  for (const char* map_field : {"annotations", "labels"}) {
    if (!f.count(map_field)) continue;
    const yaml::Node& m = f[map_field].second;
    const FieldPath map_path = path.Field(map_field);
    if (m.IsNull()) continue;
    if (!m.IsMap()) {
      return Error(m, map_path,
                   absl::StrCat("expected a mapping, got ", Describe(m)));
    }
    // Labels are not kept, but a duplicate is an error in both, as for any
    // other mapping: with "last wins" a reader and egress could disagree.
    std::set<std::string> keys;
    for (const auto& [key_node, value_node] : m.Entries()) {
      if (!key_node.IsScalar()) {
        return Error(key_node, map_path, "keys must be plain words");
      }
      const std::string key = key_node.Scalar();
      const FieldPath key_path = map_path.Field(key);
      EGRESS_ASSIGN_OR_RETURN(std::string value,
                              GetScalar(value_node, key_path));
      if (!keys.insert(key).second) {
        return Error(key_node, key_path,
                     std::string(map_field) == "annotations"
                         ? "duplicate annotation"
                         : "duplicate label");
      }
      if (std::string(map_field) == "annotations") {
        policy->annotations[key] = value;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseSpec(const yaml::Node& node, const FieldPath& path,
                               Policy* policy) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(GetFields(
      node, path, {"target", "mode", "logging", "egress", "egressDeny"}, &f));
  if (!f.count("target")) {
    return Error(node, path, "missing field \"target\"");
  }
  EGRESS_RETURN_IF_ERROR(
      ParseTarget(f["target"].second, path.Field("target"), policy));
  if (f.count("mode")) {
    EGRESS_ASSIGN_OR_RETURN(
        policy->mode, ParseWord<Mode>(f["mode"].second, path.Field("mode"),
                                      ParseMode, "enforce or audit"));
  }
  if (f.count("logging")) {
    // YAML 1.1 readers take a bare off as false; the tree keeps the text.
    EGRESS_ASSIGN_OR_RETURN(
        policy->logging,
        ParseWord<LoggingLevel>(f["logging"].second, path.Field("logging"),
                                ParseLoggingLevel, "off, denied or all"));
  }
  // "egressDeny:" with nothing after it would drop every deny rule: a
  // value lost in an edit must not widen the policy. "egress:" alone stays
  // accepted: no allow rules can only narrow it.
  EGRESS_RETURN_IF_ERROR(RefuseNoValue(f, "egressDeny", path, "no deny rules"));
  std::map<std::string, SourceLocation> names;
  if (f.count("egress")) {
    EGRESS_RETURN_IF_ERROR(ParseRules(f["egress"].second, path.Field("egress"),
                                      Action::kAllow, policy, &names));
  }
  if (f.count("egressDeny")) {
    EGRESS_RETURN_IF_ERROR(ParseRules(f["egressDeny"].second,
                                      path.Field("egressDeny"), Action::kDeny,
                                      policy, &names));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::ParseCgroupPath(const yaml::Node& node,
                                                    const FieldPath& path,
                                                    bool pattern) const {
  EGRESS_ASSIGN_OR_RETURN(std::string value, GetScalar(node, path));
  std::string p = value;
  if (!absl::StartsWith(p, "/")) p.insert(0, "/");
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == "/") {
    return Error(node, path, "the root cgroup cannot be a target");
  }
  for (absl::string_view c :
       absl::StrSplit(absl::string_view(p).substr(1), '/')) {
    if (c.empty() || c == "." || c == "..") {
      return Error(node, path,
                   absl::StrCat(Quote(value),
                                ": empty, \".\" and \"..\" components are not "
                                "allowed"));
    }
  }
  // The checks `target add` makes too (target_values.h), on what was
  // written.
  if (absl::Status st =
          pattern ? CheckCgroupPattern(value) : CheckCgroupPath(value);
      !st.ok()) {
    return Error(node, path, st.message());
  }
  return p;
}

absl::Status Parser::ParseTarget(const yaml::Node& node, const FieldPath& path,
                                 Policy* policy) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(
      GetFields(node, path,
                {"cgroupPath", "systemdUnit", "cgroupPattern", "user",
                 "container", "selector", "namespace", "podSelector", "pod"},
                &f));
  if (f.empty()) {
    return Error(node, path,
                 "expected one of cgroupPath, systemdUnit, cgroupPattern, "
                 "user, container, selector, or namespace with podSelector "
                 "or pod");
  }
  const bool pod_target =
      f.count("namespace") || f.count("podSelector") || f.count("pod");
  const size_t pod_fields =
      f.count("namespace") + f.count("podSelector") + f.count("pod");
  if (pod_target && pod_fields == f.size()) {
    return ParsePodTarget(f, path, policy);
  }
  if (f.size() > 1) {
    // Point at the second key in file order.
    std::vector<yaml::Node> keys;
    for (const auto& [name, kv] : f) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end(),
              [](const yaml::Node& a, const yaml::Node& b) {
                return std::make_pair(a.Mark().line, a.Mark().column) <
                       std::make_pair(b.Mark().line, b.Mark().column);
              });
    return Error(keys[1], path.Field(keys[1].Text()),
                 absl::StrCat("a policy has exactly one target; ",
                              keys[0].Scalar(), " is already given"));
  }
  const absl::string_view field = f.begin()->first;
  const yaml::Node& v = f.begin()->second.second;
  const FieldPath value_path = path.Field(field);
  policy->target_location = ToLocation(v.Mark());
  // GetFields admitted only the table's fields.
  policy->target.kind = *ValueOf(kTargetFields, field);
  if (policy->target.kind == TargetSource::kUnit) {
    EGRESS_ASSIGN_OR_RETURN(policy->target.value, ParseUnitName(v, value_path));
  } else if (policy->target.kind == TargetSource::kUser) {
    EGRESS_ASSIGN_OR_RETURN(policy->target.value, GetScalar(v, value_path));
    if (absl::Status st = CheckUser(policy->target.value); !st.ok()) {
      return Error(v, value_path, st.message());
    }
  } else if (policy->target.kind == TargetSource::kContainer) {
    EGRESS_ASSIGN_OR_RETURN(policy->target.value, GetScalar(v, value_path));
    if (absl::Status st = CheckContainer(policy->target.value); !st.ok()) {
      return Error(v, value_path, st.message());
    }
  } else if (policy->target.kind == TargetSource::kSelector) {
    EGRESS_ASSIGN_OR_RETURN(policy->target.value, ParseSelector(v, value_path));
  } else {
    EGRESS_ASSIGN_OR_RETURN(
        policy->target.value,
        ParseCgroupPath(v, value_path,
                        policy->target.kind == TargetSource::kPattern));
  }
  return absl::OkStatus();
}

absl::Status Parser::ParsePodTarget(const Fields& f, const FieldPath& path,
                                    Policy* policy) const {
  auto ns = f.find("namespace");
  auto selector = f.find("podSelector");
  auto pod = f.find("pod");
  if (ns == f.end()) {
    const auto& given = selector != f.end() ? *selector : *pod;
    return Error(given.second.first, path.Field(given.first),
                 "needs namespace: a pod target names its namespace (a "
                 "selector never spans namespaces)");
  }
  if (selector != f.end() && pod != f.end()) {
    return Error(pod->second.first, path.Field("pod"),
                 "a policy has exactly one target; podSelector is already "
                 "given");
  }
  if (selector == f.end() && pod == f.end()) {
    return Error(ns->second.first, path.Field("namespace"),
                 "needs podSelector (podSelector: {} for every pod of the "
                 "namespace) or pod: NAME");
  }
  const yaml::Node& ns_node = ns->second.second;
  const FieldPath ns_path = path.Field("namespace");
  EGRESS_ASSIGN_OR_RETURN(std::string ns_name, GetScalar(ns_node, ns_path));
  if (absl::Status st = CheckNamespace(ns_name); !st.ok()) {
    return Error(ns_node, ns_path, st.message());
  }
  policy->target_location = ToLocation(ns_node.Mark());
  if (pod != f.end()) {
    const yaml::Node& v = pod->second.second;
    const FieldPath pod_path = path.Field("pod");
    EGRESS_ASSIGN_OR_RETURN(std::string name, GetScalar(v, pod_path));
    if (absl::Status st = CheckPodName(name); !st.ok()) {
      return Error(v, pod_path, st.message());
    }
    policy->target.kind = TargetSource::kPod;
    policy->target.value = PodRefText({ns_name, name});
    return absl::OkStatus();
  }
  // NetworkPolicy's podSelector: {} (or null) is every pod of the namespace.
  const yaml::Node& v = selector->second.second;
  const FieldPath selector_path = path.Field("podSelector");
  PodSelector out{ns_name, {}};
  if (!v.IsNull() && !(v.IsMap() && v.size() == 0)) {
    Fields sf;
    EGRESS_RETURN_IF_ERROR(
        GetFields(v, selector_path, {"matchLabels", "matchExpressions"}, &sf));
    if (auto it = sf.find("matchExpressions"); it != sf.end()) {
      return Error(it->second.first, selector_path.Field("matchExpressions"),
                   "not supported; select with matchLabels");
    }
    // Labels lost in an edit must not select every pod of the namespace.
    EGRESS_RETURN_IF_ERROR(RefuseNoValue(sf, "matchLabels", selector_path,
                                         "every pod of the namespace", "{}"));
    auto labels = sf.find("matchLabels");
    if (labels != sf.end() && !labels->second.second.IsNull() &&
        !(labels->second.second.IsMap() && labels->second.second.size() == 0)) {
      EGRESS_ASSIGN_OR_RETURN(std::string text,
                              ParseSelector(v, selector_path));
      EGRESS_ASSIGN_OR_RETURN(out.labels, ParseLabelSelector(text));
    }
  }
  policy->target.kind = TargetSource::kPodSelector;
  policy->target.value = PodSelectorText(out);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::ParseSelector(const yaml::Node& node,
                                                  const FieldPath& path) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(GetFields(node, path, {"matchLabels"}, &f));
  auto it = f.find("matchLabels");
  if (it == f.end()) return Error(node, path, "expected matchLabels");
  const yaml::Node& labels = it->second.second;
  const FieldPath labels_path = path.Field("matchLabels");
  if (!labels.IsMap() || labels.size() == 0) {
    return Error(labels, labels_path,
                 "expected a mapping of at least one label: value");
  }
  Labels selector;
  for (const auto& [key_node, value_node] : labels.Entries()) {
    if (!key_node.IsScalar()) {
      return Error(key_node, labels_path, "label names must be plain words");
    }
    const std::string key = key_node.Scalar();
    const FieldPath key_path = labels_path.Field(key);
    EGRESS_ASSIGN_OR_RETURN(std::string value, GetScalar(value_node, key_path));
    if (absl::Status st = CheckLabel(key, value); !st.ok()) {
      return Error(value_node, key_path, st.message());
    }
    if (!selector.emplace(key, value).second) {
      return Error(key_node, key_path, "duplicate label");
    }
  }
  return LabelSelectorText(selector);
}

absl::StatusOr<std::string> Parser::ParseUnitName(const yaml::Node& node,
                                                  const FieldPath& path) const {
  EGRESS_ASSIGN_OR_RETURN(std::string unit, GetScalar(node, path));
  // The same check as `target add --unit` and egressd's own before systemctl.
  if (absl::Status st = CheckUnitName(unit); !st.ok()) {
    return Error(node, path, st.message());
  }
  const size_t dot = unit.rfind('.');
  if (dot == std::string::npos) {
    unit += ".service";
  } else {
    const std::string suffix = unit.substr(dot + 1);
    static const std::set<std::string> kWithCgroup = {
        "service", "scope", "slice", "socket", "mount", "swap"};
    if (!kWithCgroup.count(suffix)) {
      return Error(node, path,
                   absl::StrCat(Quote(unit),
                                ": only .service, .scope, .slice, .socket, "
                                ".mount and .swap units have a cgroup"));
    }
  }
  if (absl::StrContains(unit, "@.")) {
    return Error(node, path,
                 absl::StrCat(Quote(unit),
                              " is a template; name an instance, e.g. "
                              "\"foo@1.service\""));
  }
  return unit;
}

absl::Status Parser::ParseRules(
    const yaml::Node& node, const FieldPath& path, Action action,
    Policy* policy, std::map<std::string, SourceLocation>* names) const {
  if (node.IsSequence()) {
    // Rules are large: regrowing a vector of 100,000 moves each many times.
    policy->rules.reserve(policy->rules.size() + node.size());
    policy->origins.reserve(policy->origins.size() + node.size());
  }
  const size_t first = policy->rules.size();
  return ForEachItem(
      node, path,
      [&](const yaml::Node& item, const FieldPath& rule_path) -> absl::Status {
        std::string name;
        if (absl::Status st = ParseRule(item, rule_path, action, &name,
                                        &policy->rules.emplace_back());
            !st.ok()) {
          policy->rules.pop_back();  // rules and origins stay in step
          return st;
        }
        const SourceLocation loc = ToLocation(item.Mark());
        if (!name.empty()) {
          auto [it, inserted] = names->emplace(name, loc);
          if (!inserted) {
            policy->rules.pop_back();
            // The name's own position is not kept; the rule's is close
            // enough.
            return ErrorAt(
                loc, rule_path.Field("name"),
                absl::StrCat("duplicate rule name ", Quote(name),
                             " (first at line ", it->second.line, ")"));
          }
        }
        policy->origins.push_back(
            {std::move(name), action, policy->rules.size() - 1 - first, loc});
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseRule(const yaml::Node& node, const FieldPath& path,
                               Action action, std::string* name,
                               Rule* rule) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(
      GetFields(node, path,
                {"name", "comment", "to", "ports", "icmp", "raw", "unix"}, &f));
  rule->action = action;
  EGRESS_RETURN_IF_ERROR(ParseNameAndComment(f, path, name, rule));
  if (f.count("unix")) return ParseUnixPaths(f, path, rule);
  bool raw = false, icmp = false;
  if (f.count("raw")) {
    EGRESS_ASSIGN_OR_RETURN(raw, GetBool(f["raw"].second, path.Field("raw")));
  }
  if (f.count("icmp")) {
    EGRESS_ASSIGN_OR_RETURN(icmp,
                            GetBool(f["icmp"].second, path.Field("icmp")));
  }
  if (raw) {
    for (const char* other : {"to", "ports", "icmp"}) {
      if (f.count(other)) {
        return Error(f[other].first, path.Field(other),
                     "a raw rule stands alone: it takes no to, ports or icmp");
      }
    }
    rule->spec = "raw";
    rule->ports = {{Proto::kRaw}};
    return absl::OkStatus();
  }
  // "to:" and "ports:" with nothing after them are refused, not read as
  // omitted (anywhere, every port): a value lost in an edit must not widen
  // the rule. `allow 443 to` is refused for the same reason.
  EGRESS_RETURN_IF_ERROR(RefuseNoValue(f, "to", path, "anywhere"));
  EGRESS_RETURN_IF_ERROR(
      RefuseNoValue(f, "ports", path, "every port and icmp"));
  if (f.count("to")) {
    EGRESS_RETURN_IF_ERROR(
        ParseDestinations(f["to"].second, path.Field("to"), rule));
  }
  EGRESS_RETURN_IF_ERROR(ParsePorts(f, path, icmp, rule));
  // A name is matched on its DNS answers for tcp and udp only: with icmp
  // alone the names would be dropped and the rule would still allow ping
  // sockets. The rule grammar refuses the same.
  if (rule->NamesWithoutTcpOrUdp()) {
    const char* field = f.count("icmp") ? "icmp" : "ports";
    return Error(f[field].first, path.Field(field),
                 absl::StrCat("a name takes tcp and udp ports, not icmp: ",
                              Quote(rule->names[0])));
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseUnixPaths(Fields& f, const FieldPath& path,
                                    Rule* rule) const {
  for (const char* other : {"to", "ports", "icmp", "raw"}) {
    if (f.count(other)) {
      return Error(f[other].first, path.Field(other),
                   "a unix rule stands alone: it takes no to, ports, icmp or "
                   "raw");
    }
  }
  const yaml::Node& list = f["unix"].second;
  EGRESS_RETURN_IF_ERROR(ForEachItem(
      list, path.Field("unix"),
      [&](const yaml::Node& item, const FieldPath& item_path) {
        EGRESS_ASSIGN_OR_RETURN(std::string text, GetScalar(item, item_path));
        if (absl::Status st = UnixAddressBytes(text).status(); !st.ok()) {
          return Error(item, item_path, st.message());
        }
        rule->unix_paths.push_back(text);
        return absl::OkStatus();
      }));
  if (rule->unix_paths.empty()) {
    return Error(list, path.Field("unix"),
                 "expected at least one socket address (/path or @name)");
  }
  DropRepeats(&rule->unix_paths);
  rule->spec = "unix";
  rule->ports = {{Proto::kUnix}};
  return absl::OkStatus();
}

absl::Status Parser::ParseNameAndComment(Fields& f, const FieldPath& path,
                                         std::string* name, Rule* rule) const {
  std::string comment;
  if (f.count("name")) {
    const yaml::Node& v = f["name"].second;
    EGRESS_ASSIGN_OR_RETURN(*name, GetScalar(v, path.Field("name")));
    if (absl::Status st = CheckName(*name); !st.ok()) {
      return Error(v, path.Field("name"), st.message());
    }
  }
  if (f.count("comment")) {
    const yaml::Node& v = f["comment"].second;
    EGRESS_ASSIGN_OR_RETURN(comment, GetScalar(v, path.Field("comment")));
    // The check of `comment TEXT` on the command line (spec.h).
    if (absl::Status st = CheckCommentText(comment); !st.ok()) {
      return Error(v, path.Field("comment"), st.message());
    }
  }
  if (!name->empty() && !comment.empty()) {
    rule->comment = absl::StrCat(*name, ": ", comment);
  } else {
    rule->comment = name->empty() ? comment : *name;
  }
  rule->name = *name;
  return absl::OkStatus();
}

absl::Status Parser::ParseDestinations(const yaml::Node& node,
                                       const FieldPath& path,
                                       Rule* rule) const {
  EGRESS_RETURN_IF_ERROR(ForEachItem(
      node, path, [&](const yaml::Node& peer, const FieldPath& peer_path) {
        return ParsePeer(peer, peer_path, rule);
      }));
  if (rule->destinations.size() < 2) return absl::OkStatus();
  // Hashed, not FirstOccurrences: a rule may list many thousands of
  // networks.
  absl::flat_hash_set<Cidr, CidrHash> seen;
  CidrList unique;
  unique.reserve(rule->destinations.size());
  for (const Cidr& c : rule->destinations) {
    if (seen.insert(c).second) unique.push_back(c);
  }
  rule->destinations = std::move(unique);
  return absl::OkStatus();
}

absl::Status Parser::ParsePorts(Fields& f, const FieldPath& path, bool icmp,
                                Rule* rule) const {
  // The ports straight into the rule, the words into a buffer kept from rule
  // to rule: a file has up to 100,000 rules, each with a port or two.
  PortList& ports = rule->ports;
  std::vector<std::string>& words = words_;
  ports.clear();
  words.clear();
  if (f.count("ports")) {
    EGRESS_RETURN_IF_ERROR(
        ForEachItem(f["ports"].second, path.Field("ports"),
                    [&](const yaml::Node& entry, const FieldPath& entry_path) {
                      return ParsePortEntry(entry, entry_path, &ports, &words);
                    }));
  }
  if (icmp) {
    ports.push_back({Proto::kIcmp});
    words.push_back("icmp");
  }
  if (ports.empty()) {
    // Like a NetworkPolicy rule without ports: everything, as "any".
    ports = {{Proto::kTcp, 0, 65535}, {Proto::kUdp, 0, 65535}, {Proto::kIcmp}};
    words.clear();
    words.emplace_back("any");
  }
  // tcp, then udp, then icmp; first occurrence kept. Most rules are in that
  // order already, and stable_sort allocates a buffer even for one port.
  const auto by_proto = [](const PortProto& a, const PortProto& b) {
    return a.proto < b.proto;
  };
  if (!std::is_sorted(ports.begin(), ports.end(), by_proto)) {
    std::stable_sort(ports.begin(), ports.end(), by_proto);
  }
  DropRepeats(&ports);
  DropRepeats(&words);
  rule->spec = absl::StrJoin(words, ",");
  return absl::OkStatus();
}

absl::StatusOr<Cidr> Parser::ParseCidr(const yaml::Node& node,
                                       const FieldPath& path) const {
  EGRESS_ASSIGN_OR_RETURN(absl::string_view text, GetText(node, path));
  absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
  if (!cidr.ok()) return Error(node, path, cidr.status().message());
  return *cidr;
}

absl::Status Parser::ParseDomainNames(const yaml::Node& node,
                                      const FieldPath& path, Rule* rule) const {
  // An empty list must not leave a rule without destinations: that would
  // mean anywhere.
  if (!node.IsSequence() || node.size() == 0) {
    return Error(node, path, "expected a list of at least one name");
  }
  return ForEachItem(
      node, path,
      [&](const yaml::Node& item, const FieldPath& item_path) -> absl::Status {
        EGRESS_ASSIGN_OR_RETURN(std::string text, GetScalar(item, item_path));
        absl::StatusOr<std::string> name = CanonicalNewRuleName(text);
        if (!name.ok()) return Error(item, item_path, name.status().message());
        if (std::find(rule->names.begin(), rule->names.end(), *name) ==
            rule->names.end()) {
          rule->names.push_back(*name);
        }
        return absl::OkStatus();
      });
}

absl::Status Parser::ParsePeer(const yaml::Node& node, const FieldPath& path,
                               Rule* rule) const {
  CidrList* destinations = &rule->destinations;
  Fields f;
  EGRESS_RETURN_IF_ERROR(GetFields(node, path, {"ipBlock", "domainNames"}, &f));
  if (f.count("ipBlock") && f.count("domainNames")) {
    return Error(node, path,
                 "a peer is an ipBlock or domainNames, not both; write two "
                 "peers");
  }
  if (f.count("domainNames")) {
    return ParseDomainNames(f["domainNames"].second, path.Field("domainNames"),
                            rule);
  }
  if (!f.count("ipBlock")) {
    return Error(node, path, "missing field \"ipBlock\" or \"domainNames\"");
  }
  const FieldPath block_path = path.Field("ipBlock");
  const yaml::Node& block = f["ipBlock"].second;
  Fields b;
  EGRESS_RETURN_IF_ERROR(GetFields(block, block_path, {"cidr", "except"}, &b));
  if (!b.count("cidr")) {
    return Error(block, block_path, "missing field \"cidr\"");
  }
  EGRESS_ASSIGN_OR_RETURN(
      Cidr cidr, ParseCidr(b["cidr"].second, block_path.Field("cidr")));
  // "except:" with nothing after it would match all of cidr, the widest
  // reading of a value lost in an edit.
  EGRESS_RETURN_IF_ERROR(
      RefuseNoValue(b, "except", block_path, "all of the cidr"));
  if (!b.count("except")) {
    destinations->push_back(cidr);
    return absl::OkStatus();
  }
  std::vector<Cidr> excepts;
  EGRESS_RETURN_IF_ERROR(ForEachItem(
      b["except"].second, block_path.Field("except"),
      [&](const yaml::Node& item, const FieldPath& item_path) -> absl::Status {
        EGRESS_ASSIGN_OR_RETURN(Cidr e, ParseCidr(item, item_path));
        if (e.family != cidr.family || !cidr.Contains(e) || e == cidr) {
          return Error(
              item, item_path,
              absl::StrCat(e.ToString(), " is not strictly inside cidr ",
                           cidr.ToString()));
        }
        excepts.push_back(e);
        return absl::OkStatus();
      }));
  const std::vector<Cidr> pieces = SubtractCidrs(cidr, excepts);
  if (pieces.empty()) {
    return Error(b["except"].second, block_path.Field("except"),
                 absl::StrCat("the excepts cover all of ", cidr.ToString(),
                              "; the ipBlock would match nothing"));
  }
  // Duplicates are dropped once the rule is complete (linear, not per
  // piece: a rule may list many thousands of networks).
  destinations->insert(destinations->end(), pieces.begin(), pieces.end());
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> Parser::ParsePortNumber(
    const yaml::Node& node, const FieldPath& path,
    absl::string_view field) const {
  EGRESS_ASSIGN_OR_RETURN(absl::string_view text, GetText(node, path));
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n)) {
    if (absl::StrContains(text, "-") || absl::StrContains(text, ":")) {
      return Error(node, path,
                   absl::StrCat("bad ", field, " ", Quote(text),
                                ": write a range as port and endPort"));
    }
    if (absl::StrContains(text, "/")) {
      return Error(node, path,
                   absl::StrCat("bad ", field, " ", Quote(text),
                                ": write the protocol in protocol"));
    }
    return Error(
        node, path,
        absl::StrCat("bad ", field, " ", Quote(text), ": not a number"));
  }
  if (n < 1 || n > 65535) {
    return Error(node, path,
                 absl::StrCat(field, " ", n, " is out of range 1-65535"));
  }
  if (text[0] == '0') {
    // This reader would take 0443 as 443, YAML 1.1 readers (PyYAML, Go's
    // yaml.v2, tools that template or lint the file) as octal 291, or as a
    // string when a digit is 8 or 9: one file, two policies.
    std::string yaml11 = "a string";
    if (text.find_first_not_of("01234567") == absl::string_view::npos) {
      int octal = 0;
      for (char c : text) octal = octal * 8 + (c - '0');
      yaml11 = absl::StrCat("octal ", octal);
    }
    return Error(node, path,
                 absl::StrCat("bad ", field, " ", Quote(text),
                              ": a leading zero is ambiguous (YAML 1.1 reads "
                              "it as ",
                              yaml11, "); write ", n));
  }
  return static_cast<uint16_t>(n);
}

absl::Status Parser::ParsePortEntry(const yaml::Node& node,
                                    const FieldPath& path, PortList* ports,
                                    std::vector<std::string>* words) const {
  Fields f;
  EGRESS_RETURN_IF_ERROR(
      GetFields(node, path, {"port", "endPort", "protocol"}, &f));
  PortProtocol protocol;
  if (f.count("protocol")) {
    EGRESS_ASSIGN_OR_RETURN(
        protocol, ParseProtocol(f["protocol"].second, path.Field("protocol")));
  }
  if (protocol.icmp) {
    for (const char* field : {"port", "endPort"}) {
      if (f.count(field)) {
        return Error(f[field].first, path.Field(field), "ICMP has no ports");
      }
    }
    ports->push_back({Proto::kIcmp});
    words->push_back("icmp");
    return absl::OkStatus();
  }
  if (!f.count("port")) {
    if (f.count("endPort")) {
      return Error(f["endPort"].first, path.Field("endPort"),
                   "endPort needs a port");
    }
    AddRange(protocol, 0, 65535, ports);
    words->push_back(protocol.word.empty() || protocol.word == "any"
                         ? std::string("tcp,udp")
                         : protocol.word);
    return absl::OkStatus();
  }
  EGRESS_ASSIGN_OR_RETURN(absl::string_view port_text,
                          GetText(f["port"].second, path.Field("port")));
  const bool numeric =
      !port_text.empty() && (absl::ascii_isdigit(port_text[0]) ||
                             port_text[0] == '-' || port_text[0] == '+');
  if (numeric) return ParsePortRange(f, path, protocol, ports, words);
  return ParseServicePort(f, path, std::string(port_text), protocol, ports,
                          words);
}

absl::StatusOr<PortProtocol> Parser::ParseProtocol(
    const yaml::Node& node, const FieldPath& path) const {
  EGRESS_ASSIGN_OR_RETURN(absl::string_view text, GetText(node, path));
  PortProtocol protocol;
  protocol.word = absl::AsciiStrToLower(text);
  if (protocol.word == "tcp") {
    protocol.proto = Proto::kTcp;
  } else if (protocol.word == "udp") {
    protocol.proto = Proto::kUdp;
  } else if (protocol.word == "icmp") {
    protocol.icmp = true;
  } else if (protocol.word != "any") {
    return Error(node, path,
                 absl::StrCat("unknown protocol ", Quote(text),
                              ": expected TCP, UDP, ANY or ICMP"));
  }
  return protocol;
}

absl::Status Parser::ParsePortRange(Fields& f, const FieldPath& path,
                                    const PortProtocol& protocol,
                                    PortList* ports,
                                    std::vector<std::string>* words) const {
  EGRESS_ASSIGN_OR_RETURN(
      uint16_t lo,
      ParsePortNumber(f["port"].second, path.Field("port"), "port"));
  uint16_t hi = lo;
  if (f.count("endPort")) {
    const yaml::Node& end_node = f["endPort"].second;
    EGRESS_ASSIGN_OR_RETURN(
        hi, ParsePortNumber(end_node, path.Field("endPort"), "endPort"));
    if (hi < lo) {
      return Error(end_node, path.Field("endPort"),
                   absl::StrCat("endPort ", hi, " is below port ", lo));
    }
  }
  AddRange(protocol, lo, hi, ports);
  words->push_back(lo == hi ? absl::StrCat(lo, protocol.Suffix())
                            : absl::StrCat(lo, "-", hi, protocol.Suffix()));
  return absl::OkStatus();
}

absl::Status Parser::ParseServicePort(Fields& f, const FieldPath& path,
                                      const std::string& service,
                                      const PortProtocol& protocol,
                                      PortList* ports,
                                      std::vector<std::string>* words) const {
  if (f.count("endPort")) {
    return Error(f["endPort"].first, path.Field("endPort"),
                 absl::StrCat("endPort needs a numeric port, not service ",
                              Quote(service)));
  }
  const yaml::Node& port_node = f["port"].second;
  const FieldPath port_path = path.Field("port");
  absl::StatusOr<std::vector<PortProto>> found = LookupService(service);
  if (!found.ok()) {
    std::string reason = absl::StrCat("unknown service ", Quote(service));
    const std::string suggestion = Suggest(service, KnownServiceNames());
    if (!suggestion.empty()) {
      absl::StrAppend(&reason, " (did you mean ", Quote(suggestion), "?)");
    }
    return Error(port_node, port_path, reason);
  }
  size_t kept = 0;
  for (const PortProto& pp : *found) {
    if (protocol.proto && pp.proto != *protocol.proto) continue;
    ports->push_back(pp);
    ++kept;
  }
  if (kept == 0) {
    return Error(port_node, port_path,
                 absl::StrCat("service ", Quote(service), " has no ",
                              absl::AsciiStrToUpper(protocol.word), " port"));
  }
  words->push_back(protocol.word == "any" ? service
                                          : service + protocol.Suffix());
  return absl::OkStatus();
}

}  // namespace

std::string RuleOrigin::Path() const {
  return absl::StrCat(list == Action::kDeny ? "spec.egressDeny" : "spec.egress",
                      "[", index, "]");
}

std::string TargetKindName(TargetSource kind) {
  // A pid target is written as its cgroup (WritePolicy's caller resolves it).
  return WordFor(kTargetFields, kind);
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view yaml_text,
                                   const std::string& file_name) {
  // YAML is text: libyaml would refuse other bytes with a vaguer message,
  // and writing them
  // again (WritePolicy, export) turns them into U+FFFD, so a value would
  // change on its way round.
  if (const size_t bad = FirstInvalidUtf8(yaml_text);
      bad != absl::string_view::npos) {
    const absl::string_view before = yaml_text.substr(0, bad);
    const size_t line_start = before.rfind('\n');
    return absl::InvalidArgumentError(absl::StrCat(
        file_name, ":", std::count(before.begin(), before.end(), '\n') + 1, ":",
        bad - (line_start == absl::string_view::npos ? 0 : line_start + 1) + 1,
        ": not UTF-8 text (a policy file is YAML, which is UTF-8)"));
  }
  Parser parser(file_name);
  // Nothing in the parser throws by design; this is the backstop for what
  // the library does (std::bad_alloc).
  try {
    return parser.Parse(yaml_text);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(file_name, ": unexpected YAML error: ", e.what()));
  }
}

namespace {

absl::StatusOr<std::string> ReadPolicyFile(const std::string& path) {
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) {
    const int err = errno;
    const std::string message =
        absl::StrCat(path, ": cannot read: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(message);
    }
    return absl::UnavailableError(message);
  }
  std::string text;
  // Room for the whole file at once: a string grown step by step to
  // megabytes is copied several times.
  struct stat st;
  if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      static_cast<uint64_t>(st.st_size) <= kMaxFileSize) {
    text.reserve(static_cast<size_t>(st.st_size) + 1);
  }
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFileSize) {
      std::fclose(fp);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than 16 MiB; not a policy file"));
    }
  }
  const bool failed = std::ferror(fp) != 0;
  const int err = errno;
  std::fclose(fp);
  if (failed) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot read: ", std::strerror(err)));
  }
  return text;
}

// InvalidArgument unless the *.yaml or *.yml directory entry `path` is a
// regular file (or a symlink to one) that LoadPolicies would read.
absl::Status CheckPolicyEntry(const std::string& path,
                              const std::string& name) {
  namespace fs = std::filesystem;
  if (name[0] == '.') {
    // Export never writes one (names do not start with '.'); an editor's
    // leftover is not a policy either way.
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": a hidden file is not read as a policy; rename it or move it "
        "out of the directory"));
  }
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::regular) return absl::OkStatus();
  if (st.type() == fs::file_type::not_found) {
    std::error_code link_ec;
    if (fs::is_symlink(fs::symlink_status(path, link_ec))) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": a symlink to nothing, not a policy file"));
    }
  }
  if (ec && st.type() != fs::file_type::not_found) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot read: ", ec.message()));
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
}

}  // namespace

absl::StatusOr<std::vector<Policy>> LoadPolicies(
    const std::string& file_or_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(file_or_dir, ec);
  std::vector<std::string> files;
  if (ec || st.type() == fs::file_type::not_found) {
    if (st.type() == fs::file_type::not_found) {
      return absl::NotFoundError(absl::StrCat(
          file_or_dir, ": cannot read: No such file or directory"));
    }
    return absl::UnavailableError(
        absl::StrCat(file_or_dir, ": cannot read: ", ec.message()));
  }
  if (fs::is_directory(st)) {
    fs::directory_iterator it(file_or_dir, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat(file_or_dir, ": cannot read: ", ec.message()));
    }
    const std::string dir =
        absl::EndsWith(file_or_dir, "/") ? file_or_dir : file_or_dir + "/";
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!absl::EndsWith(name, ".yaml") && !absl::EndsWith(name, ".yml")) {
        continue;
      }
      // A policy file left out is a target left unenforced, so every
      // *.yaml entry loads or the whole set is refused.
      EGRESS_RETURN_IF_ERROR(CheckPolicyEntry(dir + name, name));
      files.push_back(dir + name);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat(file_or_dir, ": cannot read: ", ec.message()));
    }
    if (files.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_or_dir, ": no *.yaml or *.yml files"));
    }
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(st)) {
    files.push_back(file_or_dir);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(file_or_dir, ": not a regular file or directory"));
  }

  std::vector<Policy> policies;
  for (const std::string& file : files) {
    EGRESS_ASSIGN_OR_RETURN(std::string text, ReadPolicyFile(file));
    EGRESS_ASSIGN_OR_RETURN(Policy policy, ParsePolicy(text, file));
    policies.push_back(std::move(policy));
  }
  EGRESS_RETURN_IF_ERROR(CheckPolicySet(policies));
  return policies;
}

absl::Status CheckPolicySet(absl::Span<const Policy> policies) {
  std::map<std::string, const Policy*> by_name;
  std::map<std::pair<TargetSource, std::string>, const Policy*> by_target;
  for (const Policy& p : policies) {
    auto [name_it, new_name] = by_name.emplace(p.name, &p);
    if (!new_name) {
      const Policy& first = *name_it->second;
      return absl::InvalidArgumentError(absl::StrCat(
          LocationText(p.file, p.name_location), ": metadata.name: policy ",
          Quote(p.name), " is also defined in ",
          LocationText(first.file, first.name_location)));
    }
    auto [target_it, new_target] =
        by_target.emplace(std::make_pair(p.target.kind, p.target.value), &p);
    if (!new_target) {
      const Policy& first = *target_it->second;
      return absl::InvalidArgumentError(absl::StrCat(
          LocationText(p.file, p.target_location), ": spec.target.",
          TargetKindName(p.target.kind), ": ", Quote(p.target.value),
          " is already the target of policy ", Quote(first.name), " (",
          LocationText(first.file, first.target_location), ")"));
    }
  }
  return absl::OkStatus();
}

bool CgroupPatternMatches(absl::string_view pattern,
                          absl::string_view cgroup_path) {
  if (!absl::StartsWith(pattern, "/") || !absl::StartsWith(cgroup_path, "/")) {
    return false;
  }
  const std::vector<std::string> pat =
      absl::StrSplit(pattern.substr(1), '/', absl::SkipEmpty());
  const std::vector<std::string> path =
      absl::StrSplit(cgroup_path.substr(1), '/', absl::SkipEmpty());
  return MatchComponents(pat, 0, path, 0);
}

}  // namespace egress::policy
