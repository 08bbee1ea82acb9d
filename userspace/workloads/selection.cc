#include "userspace/workloads/selection.h"

#include <algorithm>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/workloads/cri_pods.h"

namespace egress::workloads {

namespace {

using policy::TargetSource;

// Whether a container is selected, for one target's value; nullopt when the
// value cannot be read (it selects nothing).
std::optional<std::function<bool(const Container&)>> Matcher(
    TargetSource source, const std::string& value) {
  switch (source) {
    case TargetSource::kContainer:
      return [value](const Container& c) { return NamesContainer(c, value); };
    case TargetSource::kSelector: {
      auto selector = policy::ParseLabelSelector(value);
      if (!selector.ok()) return std::nullopt;
      return [labels = *std::move(selector)](const Container& c) {
        return policy::SelectorMatches(labels, c.labels);
      };
    }
    case TargetSource::kPod: {
      auto pod = policy::ParsePodRef(value);
      if (!pod.ok()) return std::nullopt;
      return [ref = *std::move(pod)](const Container& c) {
        return c.pod_namespace == ref.ns && c.pod_name == ref.name;
      };
    }
    case TargetSource::kPodSelector: {
      auto selector = policy::ParsePodSelector(value);
      if (!selector.ok()) return std::nullopt;
      return [sel = *std::move(selector)](const Container& c) {
        return policy::PodSelectorMatches(sel, c.pod_namespace, c.labels);
      };
    }
    default:
      return std::nullopt;
  }
}

std::string ParentOf(const std::string& cgroup) {
  const size_t slash = cgroup.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/"
                                                  : cgroup.substr(0, slash);
}

}  // namespace

std::vector<Container> SelectContainers(policy::TargetSource source,
                                        const std::string& value,
                                        const std::vector<Container>& running) {
  std::vector<Container> out;
  auto selected = Matcher(source, value);
  if (!selected) return out;
  for (const Container& c : running) {
    if (!c.running || c.cgroup.empty()) continue;
    if ((*selected)(c)) out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const Container& a, const Container& b) {
    return a.cgroup < b.cgroup;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Container& a, const Container& b) {
                          return a.cgroup == b.cgroup;
                        }),
            out.end());
  // An id prefix that several ids start with selects every one of them
  // (AmbiguousContainers): the docker CLI refuses such a prefix, but a
  // policy cannot refuse a container, and keeping one (or none) would let
  // the others run unenforced.
  return out;
}

std::vector<Container> AmbiguousContainers(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& containers) {
  if (source != TargetSource::kContainer) return {};
  std::vector<Container> out;
  for (const Container& c : containers) {
    if (!NamesContainer(c, value)) continue;
    // Running and created lists may both hold a container starting now.
    if (std::any_of(out.begin(), out.end(),
                    [&c](const Container& o) { return o.id == c.id; })) {
      continue;
    }
    out.push_back(c);
  }
  if (out.size() < 2) return {};
  std::sort(out.begin(), out.end(), [](const Container& a, const Container& b) {
    return a.name != b.name ? a.name < b.name : a.id < b.id;
  });
  return out;
}

std::vector<std::string> SelectorKeys(policy::TargetSource source,
                                      const std::string& value) {
  policy::Labels labels;
  if (source == TargetSource::kSelector) {
    labels = policy::ParseLabelSelector(value).value_or(policy::Labels{});
  } else if (source == TargetSource::kPodSelector) {
    labels =
        policy::ParsePodSelector(value).value_or(policy::PodSelector{}).labels;
  }
  std::vector<std::string> keys;
  for (const auto& [key, v] : labels) keys.push_back(key);
  return keys;
}

ContainerMatcher MatcherOf(policy::TargetSource source,
                           const std::string& value) {
  auto selected = Matcher(source, value);
  if (!selected) return [](const Container&) { return false; };
  return *std::move(selected);
}

bool SelectsContainer(policy::TargetSource source, const std::string& value,
                      const Container& c) {
  return MatcherOf(source, value)(c);
}

std::string WorkloadCgroup(const Container& c) {
  if (c.pod_namespace.empty() || c.cgroup.empty()) return c.cgroup;
  const std::string pod = ParentOf(c.cgroup);
  // JoinCriPods makes no pod of a container outside a pod cgroup; one made
  // by hand is its own workload too, never its parent's (Docker's parent
  // holds every container).
  return pod == "/" || !IsPodCgroup(pod) ? c.cgroup : pod;
}

std::set<std::string> WorkloadParentsOf(const std::vector<Container>& running) {
  std::set<std::string> out;
  for (const Container& c : running) {
    if (c.cgroup.empty()) continue;
    const std::string parent = ParentOf(WorkloadCgroup(c));
    if (parent != "/") out.insert(parent);
  }
  return out;
}

bool HoldsWorkloadParent(const std::string& cgroup,
                         const std::set<std::string>& parents) {
  if (cgroup.empty() || cgroup == "/") return true;
  for (const std::string& p : parents) {
    if (p == cgroup || absl::StartsWith(p, absl::StrCat(cgroup, "/"))) {
      return true;
    }
  }
  return false;
}

std::vector<Container> SelectedOutsideParents(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& running,
    const std::set<std::string>& parents) {
  std::vector<Container> out;
  for (const Container& c : SelectContainers(source, value, running)) {
    if (!parents.count(ParentOf(WorkloadCgroup(c)))) out.push_back(c);
  }
  return out;
}

std::vector<std::string> SelectWorkloadCgroups(
    policy::TargetSource source, const std::string& value,
    const std::vector<Container>& running, const std::set<std::string>& parents,
    std::vector<std::string>* refused) {
  std::set<std::string> all = WorkloadParentsOf(running);
  all.insert(parents.begin(), parents.end());
  std::vector<std::string> out;
  for (const Container& c : SelectContainers(source, value, running)) {
    const std::string cgroup = WorkloadCgroup(c);
    if (!HoldsWorkloadParent(cgroup, all)) {
      out.push_back(cgroup);
    } else if (refused != nullptr) {
      refused->push_back(cgroup);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
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
