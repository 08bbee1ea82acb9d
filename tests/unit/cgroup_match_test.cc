// FindCgroups on a plain directory tree shaped like a cgroup hierarchy.
#include "userspace/daemon/cgroup_match.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/command.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class CgroupMatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/egress-cgmatch-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (const char* d :
         {"/system.slice/docker-ab12.scope", "/system.slice/docker-cd34.scope",
          "/system.slice/docker-cd34.scope/init", "/system.slice/nginx.service",
          "/kubepods.slice/kubepods-besteffort.slice/pod1.slice/"
          "cri-containerd-aa.scope",
          "/kubepods.slice/pod2.slice/cri-containerd-bb.scope",
          "/kubepods.slice/pod2.slice/other.scope"}) {
      Mkdirs(d);
    }
  }
  void TearDown() override {
    testing::RunCommand({"rm", "-rf", root_}).IgnoreError();
  }
  void Mkdirs(const std::string& rel) {
    std::string path = root_;
    for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
      absl::StrAppend(&path, "/", part);
      mkdir(path.c_str(), 0755);
    }
  }
  std::string root_;
};

TEST_F(CgroupMatchTest, OneLevelWildcard) {
  CgroupMatches m = FindCgroups(root_, "/system.slice/docker-*.scope");
  EXPECT_THAT(m.cgroups, ElementsAre("/system.slice/docker-ab12.scope",
                                     "/system.slice/docker-cd34.scope"));
  // New containers appear in /system.slice: that is the directory to watch.
  EXPECT_THAT(m.watch_dirs, ElementsAre("/system.slice"));
  EXPECT_FALSE(m.truncated);
}

TEST_F(CgroupMatchTest, DoubleStarCrossesLevels) {
  CgroupMatches m =
      FindCgroups(root_, "/kubepods.slice/**/cri-containerd-*.scope");
  EXPECT_THAT(
      m.cgroups,
      ElementsAre("/kubepods.slice/kubepods-besteffort.slice/"
                  "pod1.slice/cri-containerd-aa.scope",
                  "/kubepods.slice/pod2.slice/cri-containerd-bb.scope"));
  EXPECT_FALSE(m.watch_dirs.empty());
  EXPECT_EQ(m.watch_dirs[0], "/kubepods.slice");
}

TEST_F(CgroupMatchTest, MissingPrefixWatchesTheClosestAncestor) {
  CgroupMatches m = FindCgroups(root_, "/machine.slice/libpod-*.scope");
  EXPECT_THAT(m.cgroups, IsEmpty());
  EXPECT_THAT(m.watch_dirs, ElementsAre("/"));
  Mkdirs("/machine.slice/libpod-1.scope");
  m = FindCgroups(root_, "/machine.slice/libpod-*.scope");
  EXPECT_THAT(m.cgroups, ElementsAre("/machine.slice/libpod-1.scope"));
}

TEST_F(CgroupMatchTest, WildcardAtTheTopAndNoMatch) {
  CgroupMatches m = FindCgroups(root_, "/*/nginx.service");
  EXPECT_THAT(m.cgroups, ElementsAre("/system.slice/nginx.service"));
  EXPECT_THAT(m.watch_dirs,
              ElementsAre("/", "/kubepods.slice", "/system.slice"));
  EXPECT_THAT(FindCgroups(root_, "/system.slice/podman-*.scope").cgroups,
              IsEmpty());
}

TEST_F(CgroupMatchTest, NestedMatchesAreCoveredByTheOuterOne) {
  Mkdirs(
      "/kubepods.slice/pod2.slice/cri-containerd-bb.scope/"
      "cri-containerd-in.scope");
  CgroupMatches m =
      FindCgroups(root_, "/kubepods.slice/**/cri-containerd-*.scope");
  EXPECT_THAT(
      m.cgroups,
      ElementsAre("/kubepods.slice/kubepods-besteffort.slice/"
                  "pod1.slice/cri-containerd-aa.scope",
                  "/kubepods.slice/pod2.slice/cri-containerd-bb.scope"));
}

TEST_F(CgroupMatchTest, BoundedWalk) {
  CgroupMatches m = FindCgroups(root_, "/**/*.scope", /*max_dirs=*/3);
  EXPECT_TRUE(m.truncated);
  EXPECT_LE(m.cgroups.size(), 3u);
}

}  // namespace
}  // namespace egress
