#include "userspace/workloads/selection.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress::workloads {

bool IsWorkloadSource(policy::TargetSource source) {
  return source == policy::TargetSource::kContainer ||
         source == policy::TargetSource::kSelector;
}

std::vector<Container> SelectContainers(policy::TargetSource source,
                                        const std::string& value,
                                        const std::vector<Container>& running) {
  std::vector<Container> out;
  policy::Labels selector;
  if (source == policy::TargetSource::kSelector) {
    auto parsed = policy::ParseLabelSelector(value);
    if (!parsed.ok()) return out;
    selector = *std::move(parsed);
  } else if (source != policy::TargetSource::kContainer) {
    return out;
  }
  for (const Container& c : running) {
    if (!c.running || c.cgroup.empty()) continue;
    const bool selected = source == policy::TargetSource::kContainer
                              ? NamesContainer(c, value)
                              : policy::SelectorMatches(selector, c.labels);
    if (selected) out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const Container& a, const Container& b) {
    return a.cgroup < b.cgroup;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Container& a, const Container& b) {
                          return a.cgroup == b.cgroup;
                        }),
            out.end());
  // A name is one container: an id prefix matching several is ambiguous.
  if (source == policy::TargetSource::kContainer && out.size() > 1) {
    std::vector<Container> exact;
    for (const Container& c : out) {
      if (c.name == value || c.id == value) exact.push_back(c);
    }
    out = std::move(exact);
  }
  return out;
}

std::optional<Container> ContainerOfCgroup(
    const std::string& cgroup, const std::vector<Container>& running) {
  for (const Container& c : running) {
    if (c.cgroup.empty() || c.cgroup == "/") continue;
    if (cgroup == c.cgroup ||
        absl::StartsWith(cgroup, absl::StrCat(c.cgroup, "/"))) {
      return c;
    }
  }
  return std::nullopt;
}

}  // namespace egress::workloads
