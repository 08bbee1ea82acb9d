// A target `egressctl target add` takes is one a policy file takes back:
// `export` writes the target into a file, and `apply` must read it. The
// command line, the file parser and egressd (any control socket client)
// refuse the same values with the same message (target_values.h).
#include "userspace/policy/target_values.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/daemon/learner.h"
#include "userspace/daemon/state.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"

namespace egress {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

struct RefusedTarget {
  const char* option;  // egressctl's option
  const char* field;   // the policy file's field
  const char* value;
  const char* message;  // from target_values.h, on both paths
};

// The values each path accepted on one side only before the checks were
// shared.
constexpr RefusedTarget kRefused[] = {
    {"--cgroup", "cgroupPath", "/x-[x]",
     "\"/x-[x]\" has a wildcard; use cgroupPattern (--pattern) to match "
     "several cgroups, or write a literal *, ? or [ as [*], [?] or [[]"},
    {"--cgroup", "cgroupPath", "/x-*star",
     "\"/x-*star\" has a wildcard; use cgroupPattern (--pattern) to match "
     "several cgroups, or write a literal *, ? or [ as [*], [?] or [[]"},
    {"--cgroup", "cgroupPath", "/x-[*",
     "\"/x-[*\" has a wildcard; use cgroupPattern (--pattern) to match "
     "several cgroups, or write a literal *, ? or [ as [*], [?] or [[]"},
    {"--pattern", "cgroupPattern", "/x-[x*", "\"/x-[x*\": unclosed \"[\""},
    {"--pattern", "cgroupPattern", "/a/[b/c]", "\"/a/[b/c]\": unclosed \"[\""},
    {"--pattern", "cgroupPattern", "/system.slice/x.scope",
     "\"/system.slice/x.scope\" has no wildcard (*, ? or [...]); use "
     "cgroupPath (--cgroup)"},
    {"--container", "container", "a b:c",
     "\"a b:c\" is not a container name or id"},
    {"--container", "container", "web/1",
     "\"web/1\" is not a container name or id"},
};

std::string PolicyWithTarget(const RefusedTarget& t) {
  return absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
      "  name: t\nspec:\n  target:\n    ",
      t.field, ": \"", t.value, "\"\n");
}

TEST(TargetValuesTest, CommandLineAndPolicyFileRefuseTheSameValues) {
  for (const RefusedTarget& t : kRefused) {
    SCOPED_TRACE(absl::StrCat(t.option, " ", t.value));
    absl::StatusOr<cli::ParsedCommand> c =
        cli::ParseCommandLine({"target", "add", "web", t.option, t.value});
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.status().message(), absl::StrCat(t.option, ": ", t.message));

    absl::StatusOr<policy::Policy> p =
        policy::ParsePolicy(PolicyWithTarget(t), "t.yaml");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(),
                HasSubstr(absl::StrCat("t.yaml:7:", 7 + strlen(t.field),
                                       ": spec.target.", t.field, ": ")));
    EXPECT_THAT(std::string(p.status().message()), EndsWith(t.message));
  }
}

TEST(TargetValuesTest, ValuesBothPathsTake) {
  for (const char* v : {"/system.slice/nginx.service", "/x-(y)", "/a b",
                        "/x-[*]", "/[?][[]]"}) {
    EXPECT_OK(policy::CheckCgroupPath(v)) << v;
  }
  for (const char* v : {"/docker/*", "/a/[bc]", "/a/[!b]x", "/a/[]x]",
                        "/a/[[:digit:]]", "/**/x?.scope"}) {
    EXPECT_OK(policy::CheckCgroupPattern(v)) << v;
  }
  for (const char* v : {"web", "3f2a9c", "k8s_POD_x-1.2:3"}) {
    EXPECT_OK(policy::CheckContainer(v)) << v;
  }
  EXPECT_FALSE(policy::CheckContainer("").ok());
  EXPECT_FALSE(policy::CheckContainer(std::string(129, 'a')).ok());
  EXPECT_OK(policy::CheckContainer(std::string(128, 'a')));
}

// A `--pid` target names its process's cgroup, whose name may hold pattern
// characters: its export must be a file `apply` takes, naming that cgroup.
TEST(TargetValuesTest, PidTargetInCgroupWithWildcardsExportsAValueApplyTakes) {
  for (const char* cgroup :
       {"/kubepods/pod*x", "/a/b?c", "/a/[x]", "/a/[*]", "/a/x]y[", "/[[]"}) {
    TargetState t;
    t.name = "web";
    t.source = policy::TargetSource::kPid;
    t.source_value = "1234";
    t.cgroup = cgroup;
    policy::PolicyDocument doc;
    doc.name = t.name;
    doc.target = PolicyTargetOf(t);
    const std::string text = policy::WritePolicy(doc);
    absl::StatusOr<policy::Policy> p = policy::ParsePolicy(text, "web.yaml");
    ASSERT_TRUE(p.ok()) << p.status() << "\n" << text;
    EXPECT_EQ(p->target.kind, policy::TargetSource::kCgroup) << text;
    EXPECT_OK(policy::CheckCgroupPath(p->target.value)) << text;
    // It names exactly that cgroup, as a path and read as a pattern.
    absl::StatusOr<std::string> path =
        policy::CgroupPathOfText(p->target.value);
    ASSERT_OK(path.status());
    EXPECT_EQ(*path, cgroup) << text;
    EXPECT_TRUE(policy::CgroupPatternMatches(p->target.value, cgroup)) << text;
    EXPECT_FALSE(policy::CgroupPatternMatches(p->target.value,
                                              absl::StrCat(cgroup, "x")))
        << text;
  }
}

TEST(TargetValuesTest, CgroupPathTextRoundTripsAndIsCanonical) {
  EXPECT_EQ(policy::CgroupPathText("/a*b?c[d]e"), "/a[*]b[?]c[[]d]e");
  EXPECT_EQ(policy::CgroupPathText("/system.slice/x\\x2d.service"),
            "/system.slice/x\\x2d.service");
  for (const char* path : {"/a", "/a*", "/[", "/]", "/[*]", "/??", "/a/[[x"}) {
    absl::StatusOr<std::string> back =
        policy::CgroupPathOfText(policy::CgroupPathText(path));
    ASSERT_OK(back.status());
    EXPECT_EQ(*back, path);
  }
  // One text per cgroup: other bracket expressions are refused, not read
  // as the character they hold.
  for (const char* text : {"/[a]", "/[*", "/[**]", "/[!*]", "/a]*"}) {
    EXPECT_FALSE(policy::CgroupPathOfText(text).ok()) << text;
  }
}

}  // namespace
}  // namespace egress
