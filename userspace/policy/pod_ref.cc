#include "userspace/policy/pod_ref.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace egress::policy {
namespace {

bool Rfc1123Label(absl::string_view s, size_t max, bool dots) {
  if (s.empty() || s.size() > max) return false;
  auto alnum = [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
           (c >= 'a' && c <= 'z');
  };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-' && !(dots && c == '.')) return false;
  }
  return true;
}

// Splits at the first "/"; false without one.
bool SplitNamespace(absl::string_view text, absl::string_view* ns,
                    absl::string_view* rest) {
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) return false;
  *ns = text.substr(0, slash);
  *rest = text.substr(slash + 1);
  return true;
}

}  // namespace

absl::Status CheckNamespace(absl::string_view ns) {
  if (Rfc1123Label(ns, 63, /*dots=*/false)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "'", ns,
      "' is not a namespace name: lower-case letters, digits and '-', at most "
      "63, starting and ending with a letter or digit"));
}

absl::Status CheckPodName(absl::string_view name) {
  if (Rfc1123Label(name, 253, /*dots=*/true)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "'", name,
      "' is not a pod name: lower-case letters, digits, '-' and '.', at most "
      "253, starting and ending with a letter or digit"));
}

absl::StatusOr<PodRef> ParsePodRef(absl::string_view text) {
  absl::string_view ns, name;
  if (!SplitNamespace(text, &ns, &name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pod '", text, "': expected NAMESPACE/NAME, e.g. shop/web-7d9"));
  }
  if (absl::Status st = CheckNamespace(ns); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod '", text, "': ", st.message()));
  }
  if (absl::Status st = CheckPodName(name); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod '", text, "': ", st.message()));
  }
  return PodRef{std::string(ns), std::string(name)};
}

std::string PodRefText(const PodRef& ref) {
  return absl::StrCat(ref.ns, "/", ref.name);
}

absl::StatusOr<PodSelector> ParsePodSelector(absl::string_view text) {
  absl::string_view ns, labels;
  if (!SplitNamespace(text, &ns, &labels)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod selector '", text,
                     "': expected NAMESPACE/k=v[,k2=v2] (NAMESPACE/ for "
                     "every pod of the namespace)"));
  }
  if (absl::Status st = CheckNamespace(ns); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod selector '", text, "': ", st.message()));
  }
  PodSelector out{std::string(ns), {}};
  if (!labels.empty()) {
    absl::StatusOr<Labels> parsed = ParseLabelSelector(labels);
    if (!parsed.ok()) return parsed.status();
    out.labels = *std::move(parsed);
  }
  return out;
}

std::string PodSelectorText(const PodSelector& selector) {
  return absl::StrCat(selector.ns, "/", LabelSelectorText(selector.labels));
}

bool PodSelectorMatches(const PodSelector& selector, absl::string_view ns,
                        const Labels& labels) {
  if (ns.empty() || ns != selector.ns) return false;
  return selector.labels.empty() || SelectorMatches(selector.labels, labels);
}

}  // namespace egress::policy
