#include "userspace/policy/suggest_names.h"

#include <map>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(SuggestNamesTest, ExactNamesByDefault) {
  EXPECT_THAT(
      NamePatterns({"a.cdn.example", "b.cdn.example", "example.com"}, false),
      ElementsAre(Pair("a.cdn.example", "a.cdn.example"),
                  Pair("b.cdn.example", "b.cdn.example"),
                  Pair("example.com", "example.com")));
}

TEST(SuggestNamesTest, GroupingMakesAWildcardOnlyForSharedParents) {
  EXPECT_THAT(NamePatterns({"a.cdn.example", "b.cdn.example", "api.pay.example",
                            "x.y.example"},
                           true),
              ElementsAre(Pair("a.cdn.example", "*.cdn.example"),
                          Pair("api.pay.example", "api.pay.example"),
                          Pair("b.cdn.example", "*.cdn.example"),
                          Pair("x.y.example", "x.y.example")));
}

TEST(SuggestNamesTest, NoWildcardDirectlyUnderATopLevelDomain) {
  // Both are under "com" alone: *.com would allow half the internet.
  EXPECT_THAT(NamePatterns({"example.com", "other.com"}, true),
              ElementsAre(Pair("example.com", "example.com"),
                          Pair("other.com", "other.com")));
}

TEST(SuggestNamesTest, NoWildcardOverAPublicSuffix) {
  // co.uk (ICANN) and github.io (private section): anyone registers names
  // there, so *.co.uk or *.github.io would allow everybody's.
  EXPECT_THAT(NamePatterns({"shop.co.uk", "bank.co.uk", "alice.github.io",
                            "bob.github.io"},
                           true),
              ElementsAre(Pair("alice.github.io", "alice.github.io"),
                          Pair("bank.co.uk", "bank.co.uk"),
                          Pair("bob.github.io", "bob.github.io"),
                          Pair("shop.co.uk", "shop.co.uk")));
  // Below a registered domain under it, grouping is as anywhere.
  EXPECT_THAT(NamePatterns({"a.shop.co.uk", "b.shop.co.uk"}, true),
              ElementsAre(Pair("a.shop.co.uk", "*.shop.co.uk"),
                          Pair("b.shop.co.uk", "*.shop.co.uk")));
}

TEST(SuggestNamesTest, GroupsOnTheNameNotTheParentItself) {
  // The parent seen as a name of its own stays exact beside the wildcard,
  // which does not cover it.
  EXPECT_THAT(
      NamePatterns(
          {"cdn.example.org", "a.cdn.example.org", "b.cdn.example.org"}, true),
      ElementsAre(Pair("a.cdn.example.org", "*.cdn.example.org"),
                  Pair("b.cdn.example.org", "*.cdn.example.org"),
                  Pair("cdn.example.org", "cdn.example.org")));
}

TEST(SuggestNamesTest, NamesARuleCannotHoldAreLeftOut) {
  const std::string too_long =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." +
      std::string(63, 'c') + "." + std::string(62, 'd');  // 254 characters
  EXPECT_THAT(
      NamePatterns({"", "*.example.com", "bad name.example", too_long}, false),
      IsEmpty());
  EXPECT_THAT(NamePatterns({"ok.example", "bad name.example"}, true),
              ElementsAre(Pair("ok.example", "ok.example")));
}

}  // namespace
}  // namespace egress::policy
