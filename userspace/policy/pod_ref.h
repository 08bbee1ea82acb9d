// How pod targets are written in a target's one `value` string (the state,
// the protocol and `target list` keep it as is): a pod is
// "NAMESPACE/NAME", a pod selector "NAMESPACE/k=v[,k2=v2]", or
// "NAMESPACE/" for every pod of the namespace (NetworkPolicy's empty
// podSelector). A namespace never contains "/", so the first one splits.
// Pure logic.
#ifndef EGRESS_USERSPACE_POLICY_POD_REF_H_
#define EGRESS_USERSPACE_POLICY_POD_REF_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/policy/label_selector.h"

namespace egress::policy {

struct PodRef {
  std::string ns, name;
  bool operator==(const PodRef&) const = default;
};

struct PodSelector {
  std::string ns;
  Labels labels;  // empty: every pod of `ns`
  bool operator==(const PodSelector&) const = default;
};

// A namespace as Kubernetes allows it (an RFC 1123 label: lower-case
// letters, digits and "-", at most 63, starting and ending alphanumeric).
absl::Status CheckNamespace(absl::string_view ns);
// A pod name (an RFC 1123 subdomain: also ".", at most 253).
absl::Status CheckPodName(absl::string_view name);

// "shop/web-7d9" -> {shop, web-7d9}; InvalidArgument naming what is wrong.
absl::StatusOr<PodRef> ParsePodRef(absl::string_view text);
std::string PodRefText(const PodRef& ref);

// "shop/app=web,tier=front" or "shop/" -> PodSelector.
absl::StatusOr<PodSelector> ParsePodSelector(absl::string_view text);
// The canonical text (labels sorted by key).
std::string PodSelectorText(const PodSelector& selector);
// `labels` of a pod in namespace `ns` match.
bool PodSelectorMatches(const PodSelector& selector, absl::string_view ns,
                        const Labels& labels);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_POD_REF_H_
