#include "userspace/daemon/workload_info.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

// The label names of `keys`: two keys that sanitize alike ("a.b", "a_b")
// keep apart as "label_a_b" and "label_a_b_conflict1".
std::vector<std::string> LabelNames(const std::vector<std::string>& keys) {
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const std::string& key : keys) {
    const std::string base = PrometheusLabelName(key);
    std::string name = base;
    for (int n = 1; taken.count(name) > 0; ++n) {
      name = absl::StrCat(base, "_conflict", n);
    }
    taken.insert(name);
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

std::string PrometheusLabelName(absl::string_view key) {
  std::string name = "label_";
  name.reserve(name.size() + key.size());
  for (char c : key) {
    name.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) ? c
                                                                      : '_');
  }
  return name;
}

WorkloadSeries WorkloadSeriesOf(
    const std::vector<control::TargetInfo>& targets,
    const std::vector<workloads::Container>& running, size_t max_series) {
  WorkloadSeries out;
  for (const control::TargetInfo& t : targets) {
    if (!policy::IsWorkloadSource(t.source)) continue;
    const std::vector<std::string> keys =
        workloads::SelectorKeys(t.source, t.source_value);
    const std::vector<std::string> names = LabelNames(keys);
    for (const workloads::Container& c :
         workloads::SelectContainers(t.source, t.source_value, running)) {
      MetricsSnapshot::Workload w;
      w.target = t.name;
      w.container = c.name;
      w.container_id = workloads::ShortId(c.id);
      w.image = c.image;
      w.pod_namespace = c.pod_namespace;
      w.pod = c.pod_name;
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = c.labels.find(keys[i]);
        if (it != c.labels.end()) w.selector_labels[names[i]] = it->second;
      }
      out.series.push_back(std::move(w));
    }
  }
  // The cap keeps the same series from scrape to scrape: the first ones in
  // a stable order, not whichever the runtime listed first.
  auto key = [](const MetricsSnapshot::Workload& w) {
    return std::tie(w.target, w.container, w.container_id);
  };
  std::sort(out.series.begin(), out.series.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  if (out.series.size() > max_series) {
    out.omitted = out.series.size() - max_series;
    out.series.resize(max_series);
  }
  return out;
}

}  // namespace egress
