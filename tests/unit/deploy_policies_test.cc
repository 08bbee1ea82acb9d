// The policies the Kubernetes policy sets ship (ConfigMap egress-policies
// under deploy/kubernetes/policy-sets) parse as egressd reads its
// --policy_dir, and select pods by namespace and labels, never in
// kube-system or egress itself.
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "userspace/policy/pod_ref.h"
#include "userspace/policy/policy_file.h"
#include "yaml-cpp/yaml.h"

namespace egress {
namespace {

TEST(DeployPolicySetsTest, EveryShippedPolicyParses) {
  int policies = 0;
  for (const char* set : {"audit-first", "enforcing"}) {
    const std::string path = std::string(EGRESS_SOURCE_DIR) +
                             "/deploy/kubernetes/policy-sets/" + set +
                             "/policies.yaml";
    YAML::Node config_map = YAML::LoadFile(path);
    ASSERT_TRUE(config_map["data"].IsMap()) << path;
    for (const auto& entry : config_map["data"]) {
      const std::string file = entry.first.as<std::string>();
      auto p = policy::ParsePolicy(entry.second.as<std::string>(), file);
      ASSERT_TRUE(p.ok()) << set << ": " << p.status();
      ++policies;
      ASSERT_EQ(p->target.kind, policy::TargetSource::kPodSelector)
          << set << "/" << file;
      auto selector = policy::ParsePodSelector(p->target.value);
      ASSERT_TRUE(selector.ok()) << selector.status();
      EXPECT_NE(selector->ns, "kube-system") << set << "/" << file;
      EXPECT_NE(selector->ns, "egress") << set << "/" << file;
      EXPECT_FALSE(selector->labels.empty()) << set << "/" << file;
      EXPECT_EQ(p->mode, std::string(set) == "enforcing"
                             ? policy::Mode::kEnforce
                             : policy::Mode::kAudit)
          << set << "/" << file;
    }
  }
  EXPECT_EQ(policies, 4);
}

}  // namespace
}  // namespace egress
