#include "userspace/policy/unix_rules.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace egress::policy {
namespace {

absl::Status BadAddress(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("unix address '", text, "' ", why));
}

}  // namespace

absl::StatusOr<std::string> UnixAddressBytes(absl::string_view text) {
  if (text.empty() || (text[0] != '/' && text[0] != '@')) {
    return BadAddress(text, "must be an absolute path or @name");
  }
  if (text.find('\0') != absl::string_view::npos) {
    return BadAddress(text, "has a NUL byte");
  }
  if (text == "@") return BadAddress(text, "has an empty abstract name");
  // Records show such bytes as '?' (UnixPathText), and the control protocol
  // and the state file carry text: a rule naming them could not be shown,
  // learned or sent as typed.
  for (const char c : text.substr(1)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      return BadAddress(text,
                        "has a control or non-ASCII byte; rules name only "
                        "printable ASCII addresses");
    }
  }
  std::string bytes(text);
  if (bytes[0] == '@') bytes[0] = '\0';
  if (bytes.size() > EGRESS_UNIX_PATH_MAX) {
    return BadAddress(
        text, absl::StrCat("is longer than ", EGRESS_UNIX_PATH_MAX, " bytes"));
  }
  return bytes;
}

std::string UnixAddressText(absl::string_view bytes) {
  std::string out(bytes);
  for (char& c : out) {
    if (c == '\0') c = '@';
  }
  return out;
}

egress_unix_key UnixKey(uint32_t ruleset, absl::string_view bytes) {
  egress_unix_key k{};
  k.ruleset = ruleset;
  const size_t n = std::min<size_t>(bytes.size(), EGRESS_UNIX_PATH_MAX);
  k.len = static_cast<uint32_t>(n);
  std::memcpy(k.path, bytes.data(), n);
  return k;
}

absl::Status CompileUnixRules(
    uint32_t ruleset, absl::Span<const Rule> rules,
    std::vector<std::pair<egress_unix_key, egress_rule_value>>* out,
    uint8_t* flags) {
  // bytes -> index in `out`, to resolve collisions.
  std::map<std::string, size_t> index;
  for (const Rule& rule : rules) {
    if (rule.ports.empty() || rule.ports[0].proto != Proto::kUnix) continue;
    if (rule.unix_paths.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule ", rule.id, ": a unix rule names no address"));
    }
    *flags |= EGRESS_TF_UNIX_RULES;
    if (rule.action == Action::kAllow) *flags |= EGRESS_TF_UNIX_ALLOWLIST;
    egress_rule_value v{};
    v.rule_id = rule.id;
    v.verdict = rule.action == Action::kAllow ? EGRESS_VERDICT_ALLOW
                                              : EGRESS_VERDICT_DENY;
    for (const std::string& text : rule.unix_paths) {
      absl::StatusOr<std::string> bytes = UnixAddressBytes(text);
      if (!bytes.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("rule ", rule.id, ": ", bytes.status().message()));
      }
      auto [it, inserted] = index.emplace(*bytes, out->size());
      if (inserted) {
        out->emplace_back(UnixKey(ruleset, *bytes), v);
        continue;
      }
      egress_rule_value& kept = (*out)[it->second].second;
      // Deny beats allow; among equals the lowest id names the decision.
      if (v.verdict < kept.verdict ||
          (v.verdict == kept.verdict && v.rule_id < kept.rule_id)) {
        kept = v;
      }
    }
  }
  if (out->size() > EGRESS_MAX_UNIX_RULES) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rules need ", out->size(), " unix entries; unix_rules holds at most ",
        EGRESS_MAX_UNIX_RULES));
  }
  return absl::OkStatus();
}

UnixDecision EvaluateUnix(
    absl::Span<const std::pair<egress_unix_key, egress_rule_value>> entries,
    uint8_t flags, uint32_t ruleset, absl::string_view bytes) {
  UnixDecision d;
  if (!(flags & EGRESS_TF_UNIX_RULES)) return d;
  d.looked_at = true;
  const egress_unix_key want = UnixKey(ruleset, bytes);
  for (const auto& [k, v] : entries) {
    if (std::memcmp(&k, &want, sizeof(k)) != 0) continue;
    d.rule_id = v.rule_id;
    d.verdict = v.verdict;
    d.reason = v.verdict == EGRESS_VERDICT_ALLOW ? EGRESS_REASON_MATCH_ALLOW
                                                 : EGRESS_REASON_MATCH_DENY;
    return d;
  }
  if (flags & EGRESS_TF_UNIX_ALLOWLIST) {
    d.verdict = EGRESS_VERDICT_DENY;
    d.reason = EGRESS_REASON_NO_MATCH;
  }
  return d;
}

}  // namespace egress::policy
