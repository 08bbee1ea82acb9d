// What `egressctl run` refuses its command: family names, the options, the
// values the seccomp filter refuses and the line printed for a refusal.
#include "userspace/cli/run_restrictions.h"

#include <sys/socket.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace egress::cli {
namespace {

using ::testing::ElementsAre;

// The family a name parses to; -1 when it does not parse.
int Family(absl::string_view word) {
  absl::StatusOr<int> f = ParseFamily(word);
  return f.ok() ? *f : -1;
}

TEST(RunRestrictionsTest, FamilyNamesInEverySpelling) {
  EXPECT_EQ(Family("packet"), AF_PACKET);
  EXPECT_EQ(Family("AF_PACKET"), AF_PACKET);
  EXPECT_EQ(Family("pf_vsock"), AF_VSOCK);
  EXPECT_EQ(Family("local"), AF_UNIX);
  EXPECT_EQ(Family("xdp"), 44);
  EXPECT_STATUS(ParseFamily("paket"), absl::StatusCode::kInvalidArgument,
                "unknown socket family 'paket'; did you mean 'packet'?");
  EXPECT_STATUS(ParseFamily("17"), absl::StatusCode::kInvalidArgument, "'17'");
  EXPECT_EQ(FamilyName(AF_VSOCK), "AF_VSOCK");
  EXPECT_EQ(FamilyName(200), "family 200");
  EXPECT_EQ(FamilyShortName(AF_INET6), "inet6");
}

TEST(RunRestrictionsTest, EveryKnownFamilyRoundTrips) {
  int last = 0;
  for (const SocketFamily& f : KnownFamilies()) {
    EXPECT_GT(f.number, last) << f.name;
    last = f.number;
    EXPECT_EQ(Family(FamilyName(f.number)), f.number);
  }
  EXPECT_EQ(last, 45);  // AF_MCTP, the last family of Linux 6.x
}

TEST(RunRestrictionsTest, DefaultAllowsUnixInetInet6NetlinkOnly) {
  ASSERT_OK_AND_ASSIGN(RunRestrictions r,
                       MakeRunRestrictions({}, false, false, false));
  EXPECT_THAT(r.allowed_families,
              ElementsAre(AF_UNIX, AF_INET, AF_INET6, AF_NETLINK));
  EXPECT_FALSE(r.FamilyAllowed(AF_PACKET));
  EXPECT_FALSE(r.FamilyAllowed(AF_UNSPEC));
  EXPECT_TRUE(r.RefusesIoUring());
  EXPECT_TRUE(r.RefusesAnything());
}

TEST(RunRestrictionsTest, AllowFamilyAddsToTheDefaults) {
  ASSERT_OK_AND_ASSIGN(
      RunRestrictions r,
      MakeRunRestrictions({"packet, vsock", "AF_PACKET"}, false, false, false));
  EXPECT_THAT(r.allowed_families, ElementsAre(AF_UNIX, AF_INET, AF_INET6,
                                              AF_NETLINK, AF_PACKET, AF_VSOCK));
  EXPECT_STATUS(MakeRunRestrictions({"packet,bogus"}, false, false, false),
                absl::StatusCode::kInvalidArgument,
                "--allow-family: unknown socket family 'bogus'");
  EXPECT_STATUS(MakeRunRestrictions({"packet"}, true, false, false),
                absl::StatusCode::kInvalidArgument, "exclude each other");
}

TEST(RunRestrictionsTest, OverridesLiftEachRefusal) {
  ASSERT_OK_AND_ASSIGN(RunRestrictions any,
                       MakeRunRestrictions({}, true, false, false));
  EXPECT_TRUE(any.FamilyAllowed(AF_PACKET));
  EXPECT_FALSE(any.RefusesIoUring());
  EXPECT_TRUE(any.RefusesAnything());  // user namespaces still
  ASSERT_OK_AND_ASSIGN(RunRestrictions all,
                       MakeRunRestrictions({}, true, true, false));
  EXPECT_FALSE(all.RefusesAnything());
  ASSERT_OK_AND_ASSIGN(RunRestrictions uring,
                       MakeRunRestrictions({}, false, false, true));
  EXPECT_FALSE(uring.RefusesIoUring());
  EXPECT_FALSE(uring.FamilyAllowed(AF_PACKET));
}

TEST(RunRestrictionsTest, FilterRefusesEveryValueOutsideTheList) {
  ASSERT_OK_AND_ASSIGN(RunRestrictions r,
                       MakeRunRestrictions({"vsock"}, false, false, false));
  const RefusedFamilies refused = RefusedFamilyValues(r);
  EXPECT_EQ(refused.lowest, uint64_t{AF_UNIX});
  EXPECT_EQ(refused.highest, uint64_t{AF_VSOCK});
  // Every value the filter lets through is an allowed family: check each
  // value up to past the largest family, and values with high bits set.
  auto passes = [&](uint64_t v) {
    if (v < refused.lowest || v > refused.highest) return false;
    for (uint64_t b : refused.between) {
      if (v == b) return false;
    }
    return true;
  };
  for (uint64_t v = 0; v < 64; ++v) {
    EXPECT_EQ(passes(v), r.FamilyAllowed(static_cast<int>(v))) << v;
  }
  EXPECT_FALSE(passes((uint64_t{1} << 32) | AF_INET));
  EXPECT_FALSE(passes(~uint64_t{0}));
}

TEST(RunRestrictionsTest, RefusalLineNamesTheCallAndTheOption) {
  EXPECT_EQ(
      RefusalLine(RefusedCall::kFamily, "socket", AF_PACKET, 1234, "python3"),
      "egressctl run: refused socket(AF_PACKET) by pid 1234 (python3): "
      "family not allowed; --allow-family packet allows it");
  EXPECT_EQ(RefusalLine(RefusedCall::kFamily, "socketpair", 99, 7, "x"),
            "egressctl run: refused socketpair(family 99) by pid 7 (x): "
            "family not allowed; --any-family allows it");
  EXPECT_EQ(
      RefusalLine(RefusedCall::kUserNamespace, "unshare", 0, 9, "unshare"),
      "egressctl run: refused unshare(CLONE_NEWUSER) by pid 9 "
      "(unshare): new user namespaces are not allowed; --allow-userns "
      "allows it");
  EXPECT_EQ(RefusalLine(RefusedCall::kIoUring, "io_uring_setup", 0, 5, "fio"),
            "egressctl run: refused io_uring_setup by pid 5 (fio): io_uring "
            "can create sockets of any family; --allow-io-uring allows it");
}

}  // namespace
}  // namespace egress::cli
