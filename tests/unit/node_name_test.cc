// Which node name egressd puts into records: --node_name, then NODE_NAME
// (the DaemonSet's downward API value), then the host name.
#include "userspace/daemon/node_name.h"

#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

TEST(NodeNameTest, FlagBeatsEnvironmentBeatsHostName) {
  EXPECT_EQ(*ChooseNodeName("node-a", "node-b", "pod-7d9"), "node-a");
  EXPECT_EQ(*ChooseNodeName("", "node-b", "pod-7d9"), "node-b");
  EXPECT_EQ(*ChooseNodeName("", nullptr, "pod-7d9"), "pod-7d9");
  // An empty NODE_NAME (a downward API field that resolved to nothing) is
  // the same as none.
  EXPECT_EQ(*ChooseNodeName("", "", "pod-7d9"), "pod-7d9");
}

TEST(NodeNameTest, RefusesNamesNoNodeCanHaveSayingWhereTheyCameFrom) {
  auto spaced = ChooseNodeName("node a", nullptr, "h");
  ASSERT_FALSE(spaced.ok());
  EXPECT_EQ(spaced.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spaced.status().message(), HasSubstr("--node_name"));
  auto control = ChooseNodeName("", "node\n1", "h");
  ASSERT_FALSE(control.ok());
  EXPECT_THAT(control.status().message(), HasSubstr("NODE_NAME"));
  EXPECT_THAT(control.status().message(), HasSubstr("node\\n1"));
  EXPECT_FALSE(ChooseNodeName(std::string(254, 'n'), nullptr, "h").ok());
  EXPECT_EQ(*ChooseNodeName(std::string(253, 'n'), nullptr, "h"),
            std::string(253, 'n'));
}

TEST(NodeNameTest, HostNameIsTheKernels) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(HostName(), host);
}

}  // namespace
}  // namespace egress
