// A container's labels as an operator selects by them: `k=v[,k2=v2]`, every
// pair required (Kubernetes' matchLabels). Pure logic.
#ifndef EGRESS_USERSPACE_POLICY_LABEL_SELECTOR_H_
#define EGRESS_USERSPACE_POLICY_LABEL_SELECTOR_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

using Labels = std::map<std::string, std::string>;

// "com.docker.compose.service=web,tier=front" -> {{key, value}...}.
// InvalidArgument naming the bad pair: no "=", an empty or repeated key, a
// key or value with a character outside [A-Za-z0-9._/-] (or ":" in keys).
absl::StatusOr<Labels> ParseLabelSelector(absl::string_view text);
// Checks one key and value as ParseLabelSelector does (policy files).
absl::Status CheckLabel(absl::string_view key, absl::string_view value);
// The canonical text (sorted by key): what the state and `target list` keep.
std::string LabelSelectorText(const Labels& selector);
// Every pair of `selector` is in `labels` with the same value; an empty
// selector matches nothing (it would select every container).
bool SelectorMatches(const Labels& selector, const Labels& labels);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_LABEL_SELECTOR_H_
