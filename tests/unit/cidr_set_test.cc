#include "userspace/policy/cidr_set.h"

#include <algorithm>
#include <iterator>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SubtractCidrsTest, SplitsAroundEachExcept) {
  EXPECT_THAT(SubtractCidrs(C("203.0.113.0/24"), {C("203.0.113.0/25")}),
              ElementsAre(C("203.0.113.128/25")));
  EXPECT_THAT(SubtractCidrs(C("203.0.113.0/24"), {C("203.0.113.200")}),
              ElementsAre(C("203.0.113.0/25"), C("203.0.113.128/26"),
                          C("203.0.113.192/29"), C("203.0.113.201"),
                          C("203.0.113.202/31"), C("203.0.113.204/30"),
                          C("203.0.113.208/28"), C("203.0.113.224/27")));
  EXPECT_THAT(
      SubtractCidrs(C("0.0.0.0/0"),
                    {C("10.0.0.0/8"), C("172.16.0.0/12"), C("192.168.0.0/16")})
          .size(),
      // 8 pieces around the /8; the /12 splits 128.0.0.0/1 into 11
      // (net +10), the /16 splits 192.0.0.0/2 into 14 (net +13).
      8u + 10u + 13u);
  EXPECT_THAT(SubtractCidrs(C("2001:db8::/32"), {C("2001:db8::/33")}),
              ElementsAre(C("2001:db8:8000::/33")));
  // Nested and overlapping excepts; an except covering the whole.
  EXPECT_THAT(
      SubtractCidrs(C("10.0.0.0/30"), {C("10.0.0.0/31"), C("10.0.0.1")}),
      ElementsAre(C("10.0.0.2/31")));
  EXPECT_THAT(SubtractCidrs(C("10.0.0.0/31"), {C("10.0.0.0"), C("10.0.0.1")}),
              IsEmpty());
  EXPECT_THAT(SubtractCidrs(C("10.0.0.0/8"), {}), ElementsAre(C("10.0.0.0/8")));
}

TEST(NormalizeCidrsTest, JoinsHalvesAndDropsWhatIsCovered) {
  EXPECT_THAT(NormalizeCidrs({C("10.0.0.128/25"), C("10.0.0.0/25")}),
              ElementsAre(C("10.0.0.0/24")));
  // Four quarters join in two steps.
  EXPECT_THAT(NormalizeCidrs({C("10.0.0.192/26"), C("10.0.0.0/26"),
                              C("10.0.0.64/26"), C("10.0.0.128/26")}),
              ElementsAre(C("10.0.0.0/24")));
  EXPECT_THAT(NormalizeCidrs({C("10.1.2.3"), C("10.0.0.0/8"), C("10.0.0.0/8"),
                              C("::1"), C("192.0.2.0/24")}),
              ElementsAre(C("10.0.0.0/8"), C("192.0.2.0/24"), C("::1")));
  // Neighbours that are not two halves of one network stay apart.
  EXPECT_THAT(NormalizeCidrs({C("10.0.0.1"), C("10.0.0.2")}),
              ElementsAre(C("10.0.0.1"), C("10.0.0.2")));
  // IPv4 and IPv6 never join, not even at /0.
  EXPECT_THAT(NormalizeCidrs({Cidr::AnyV6(), Cidr::AnyV4()}),
              ElementsAre(Cidr::AnyV4(), Cidr::AnyV6()));
  EXPECT_THAT(NormalizeCidrs({}), IsEmpty());
}

// `n` scattered /32s (random addresses, seeded).
std::vector<Cidr> ScatteredHosts(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Cidr> out;
  for (int i = 0; i < n; ++i) {
    Cidr c = C("0.0.0.0/32");
    const uint32_t a = static_cast<uint32_t>(rng());
    for (int b = 0; b < 4; ++b)
      c.addr[b] = static_cast<uint8_t>(a >> (24 - 8 * b));
    out.push_back(c);
  }
  return out;
}

// The size a ipBlock `except` list reaches in practice (a blocklist): 20,000
// scattered /32s out of 0.0.0.0/0. Quadratic subtraction took minutes here;
// the result is checked as sets: disjoint from every except, and together
// with them the whole space.
TEST(SubtractCidrsTest, TwentyThousandScatteredExcepts) {
  const std::vector<Cidr> excepts = ScatteredHosts(20000, 11);
  const Cidr whole = C("0.0.0.0/0");
  const std::vector<Cidr> pieces = SubtractCidrs(whole, excepts);
  const std::vector<Cidr> removed = NormalizeCidrs(excepts);
  EXPECT_LE(pieces.size(), 32 * removed.size());
  EXPECT_TRUE(std::is_sorted(pieces.begin(), pieces.end(), CidrLess));
  // Disjoint: no piece holds an except (the first one at or after it) or
  // lies inside one (the last one before it).
  for (const Cidr& p : pieces) {
    auto it = std::lower_bound(removed.begin(), removed.end(), p, CidrLess);
    ASSERT_TRUE(it == removed.end() || !p.Contains(*it)) << p.ToString();
    ASSERT_TRUE(it == removed.begin() || !std::prev(it)->Contains(p))
        << p.ToString();
  }
  std::vector<Cidr> all = pieces;
  all.insert(all.end(), excepts.begin(), excepts.end());
  EXPECT_THAT(NormalizeCidrs(all), ElementsAre(whole));
}

// Linear, proved by counting rather than timing: the work SubtractCidrs
// reports (pieces looked at, excepts tested against a piece) stays within a
// few steps per except per prefix bit, and ten times the excepts cost about
// ten times the work. The subtraction that took 164 s for 20,000 excepts
// tested every except against every piece cut so far: n^2/2 tests, 2 * 10^8
// here, and a hundredfold growth from 2,000 to 20,000.
TEST(SubtractCidrsTest, WorkGrowsLinearlyWithExcepts) {
  const Cidr whole = C("0.0.0.0/0");
  SubtractWork small, large;
  SubtractCidrs(whole, ScatteredHosts(2000, 5), &small);
  const std::vector<Cidr> large_pieces =
      SubtractCidrs(whole, ScatteredHosts(20000, 11), &large);
  // Every piece looked at is kept, dropped or halved; a half is on the way
  // to an except, so at most 2 per except per bit (plus `whole`).
  EXPECT_GE(large.pieces, large_pieces.size());
  EXPECT_LE(large.pieces, 2u * 32 * 20000 + 1);
  // One test per halved piece and a binary search among the excepts it
  // holds: summed over one depth at most one more per except.
  EXPECT_LE(large.tests, 3u * 32 * 20000);
  EXPECT_GT(small.pieces, 0u);
  EXPECT_GT(small.tests, 0u);
  const double pieces_ratio =
      static_cast<double>(large.pieces) / static_cast<double>(small.pieces);
  const double tests_ratio =
      static_cast<double>(large.tests) / static_cast<double>(small.tests);
  EXPECT_LT(pieces_ratio, 15) << small.pieces << " -> " << large.pieces;
  EXPECT_LT(tests_ratio, 15) << small.tests << " -> " << large.tests;
}

TEST(NormalizeCidrsTest, SubtractionUndone) {
  const Cidr whole = C("0.0.0.0/0");
  std::vector<Cidr> pieces = SubtractCidrs(whole, {C("10.0.0.0/8")});
  pieces.push_back(C("10.0.0.0/8"));
  EXPECT_THAT(NormalizeCidrs(pieces), ElementsAre(whole));
}

// Against sets of addresses: random networks inside 10.0.0.0/24 give the
// same normalized form exactly when they hold the same addresses, and the
// form is as small as it can be (no two of its networks join).
TEST(NormalizeCidrsTest, SameAddressesSameForm) {
  std::mt19937 rng(7);
  auto random_set = [&] {
    std::vector<Cidr> out;
    const int n = std::uniform_int_distribution<int>(0, 6)(rng);
    for (int i = 0; i < n; ++i) {
      Cidr c = C("10.0.0.0/24");
      c.prefix_len =
          static_cast<uint8_t>(std::uniform_int_distribution<int>(25, 32)(rng));
      const int host_bits = 32 - c.prefix_len;
      c.addr[3] = static_cast<uint8_t>(
          std::uniform_int_distribution<int>(0, 255)(rng) >> host_bits
                                                                 << host_bits);
      out.push_back(c);
    }
    return out;
  };
  auto addresses = [](const std::vector<Cidr>& set) {
    std::set<int> out;
    for (int a = 0; a < 256; ++a) {
      Cidr host = C("10.0.0.0");
      host.addr[3] = static_cast<uint8_t>(a);
      for (const Cidr& c : set) {
        if (c.Contains(host)) out.insert(a);
      }
    }
    return out;
  };
  for (int i = 0; i < 2000; ++i) {
    const std::vector<Cidr> a = random_set(), b = random_set();
    const std::vector<Cidr> na = NormalizeCidrs(a), nb = NormalizeCidrs(b);
    EXPECT_EQ(addresses(a), addresses(na));
    EXPECT_EQ(na == nb, addresses(a) == addresses(b));
    EXPECT_EQ(NormalizeCidrs(na), na);
    for (int host = 0; host < 256; host += 17) {
      Cidr h = C("10.0.0.0");
      h.addr[3] = static_cast<uint8_t>(host);
      EXPECT_EQ(NormalizedContains(na, h), addresses(a).count(host) == 1);
    }
  }
}

TEST(NormalizedContainsTest, NetworksInsideTheSet) {
  const std::vector<Cidr> set = NormalizeCidrs(
      {C("10.0.0.0/8"), C("192.0.2.0/25"), C("192.0.2.128/25"), C("::1")});
  EXPECT_TRUE(NormalizedContains(set, C("10.0.0.0/8")));
  EXPECT_TRUE(NormalizedContains(set, C("10.200.0.0/16")));
  EXPECT_TRUE(NormalizedContains(set, C("192.0.2.0/24")));  // both halves
  EXPECT_TRUE(NormalizedContains(set, C("::1")));
  EXPECT_FALSE(NormalizedContains(set, C("10.0.0.0/7")));
  EXPECT_FALSE(NormalizedContains(set, C("11.0.0.1")));
  EXPECT_FALSE(NormalizedContains(set, C("0.0.0.0/0")));
  EXPECT_FALSE(NormalizedContains(set, C("::2")));
  EXPECT_FALSE(NormalizedContains(set, C("2001:db8::/32")));
  EXPECT_FALSE(NormalizedContains({}, C("10.0.0.1")));
}

}  // namespace
}  // namespace egress::policy
