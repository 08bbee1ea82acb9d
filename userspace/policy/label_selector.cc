#include "userspace/policy/label_selector.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace egress::policy {
namespace {

bool LabelChars(absl::string_view s, absl::string_view extra) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("._/-").find(c) == absl::string_view::npos &&
        extra.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status CheckLabel(absl::string_view key, absl::string_view value) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label '", key, "=", value, "' has an empty key"));
  }
  if (key.size() > 253 || value.size() > 253 || !LabelChars(key, ":") ||
      !LabelChars(value, "")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label '", key, "=", value,
        "': keys and values are letters, digits and . _ / - (keys also :), "
        "at most 253 characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> ParseLabelSelector(absl::string_view text) {
  Labels out;
  for (absl::string_view pair : absl::StrSplit(text, ',')) {
    pair = absl::StripAsciiWhitespace(pair);
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector '", text, "': '", pair, "' is not key=value"));
    }
    absl::string_view key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (absl::Status st = CheckLabel(key, value); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector '", text, "': ", st.message()));
    }
    if (!out.emplace(std::string(key), std::string(value)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "selector '", text, "': label '", key, "' is given twice"));
    }
  }
  return out;
}

std::string LabelSelectorText(const Labels& selector) {
  return absl::StrJoin(selector, ",", absl::PairFormatter("="));
}

bool SelectorMatches(const Labels& selector, const Labels& labels) {
  if (selector.empty()) return false;
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace egress::policy
