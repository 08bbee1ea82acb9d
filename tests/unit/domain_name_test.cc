// Domain names as rules write them (userspace/dns/domain_name.h): which are
// valid, and what exact and wildcard names match.
#include "userspace/dns/domain_name.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/policy/name_rules.h"

namespace egress::dns {
namespace {

DomainPattern Pattern(const std::string& text) {
  absl::StatusOr<DomainPattern> p = DomainPattern::Parse(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : *DomainPattern::Parse("invalid.example");
}

struct MatchCase {
  const char* pattern;
  const char* name;
  bool matches;
};

// The edges: a wildcard covers every name strictly below its domain, an
// exact name only itself; neither crosses a label boundary.
constexpr MatchCase kMatches[] = {
    {"*.example.com", "example.com", false},
    {"*.example.com", "a.example.com", true},
    {"*.example.com", "a.b.example.com", true},
    {"*.example.com", "aexample.com", false},
    {"*.example.com", "a.example.com.evil", false},
    {"*.example.com", "com", false},
    {"example.com", "example.com", true},
    {"example.com", "a.example.com", false},
    {"example.com", "a.b.example.com", false},
    {"example.com", "example.co", false},
    {"example.com", "xexample.com", false},
};

TEST(DomainNameTest, ExactAndWildcardEdges) {
  for (const MatchCase& c : kMatches) {
    EXPECT_EQ(Pattern(c.pattern).Matches(c.name), c.matches)
        << c.pattern << " vs " << c.name;
  }
}

TEST(DomainNameTest, PatternsWriteBackAsGiven) {
  const DomainPattern wildcard = Pattern("*.example.com");
  EXPECT_TRUE(wildcard.wildcard());
  EXPECT_EQ(wildcard.domain(), "example.com");
  EXPECT_EQ(wildcard.ToString(), "*.example.com");
  const DomainPattern exact = Pattern("example.com");
  EXPECT_FALSE(exact.wildcard());
  EXPECT_EQ(exact.ToString(), "example.com");
}

TEST(DomainNameTest, CaseAndTrailingDotDoNotMatter) {
  EXPECT_TRUE(Pattern("API.Example.COM.").Matches("api.example.com"));
  EXPECT_TRUE(Pattern("api.example.com").Matches("API.EXAMPLE.COM."));
  EXPECT_TRUE(Pattern("*.Example.com").Matches("X.EXAMPLE.COM"));
  EXPECT_EQ(Pattern("API.Example.COM.").ToString(), "api.example.com");
}

TEST(DomainNameTest, InvalidNamesNeverMatch) {
  const DomainPattern p = Pattern("*.example.com");
  EXPECT_FALSE(p.Matches("a b.example.com"));
  EXPECT_FALSE(p.Matches("a..example.com"));
  EXPECT_FALSE(p.Matches(""));
}

TEST(DomainNameTest, LimitsOfLabelsAndNames) {
  const std::string l63(63, 'a');
  const std::string n253 =
      l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
  ASSERT_EQ(n253.size(), 253u);
  EXPECT_OK(NormalizeDomainName(l63 + ".com"));
  EXPECT_OK(NormalizeDomainName(n253));
  EXPECT_OK(NormalizeDomainName(n253 + "."));
  EXPECT_STATUS(NormalizeDomainName(std::string(64, 'a') + ".com"),
                absl::StatusCode::kInvalidArgument, "label longer than 63");
  EXPECT_STATUS(NormalizeDomainName(n253 + "b"),
                absl::StatusCode::kInvalidArgument, "longer than 253");
}

TEST(DomainNameTest, AlphabetIsTheParsers) {
  EXPECT_OK(NormalizeDomainName("_dmarc.example.com"));
  EXPECT_OK(NormalizeDomainName("-x-.example.com"));
  EXPECT_OK(NormalizeDomainName("123.example"));
  for (const char* bad : {"a b.com", "a/b.com", "é.com", "a:b", "a@b.com"}) {
    EXPECT_STATUS(NormalizeDomainName(bad), absl::StatusCode::kInvalidArgument,
                  "letters, digits")
        << bad;
  }
}

// No top-level domain starts with a digit; addresses and the ranges people
// write for them are refused as names a user writes, with where addresses
// go. A rule stored by an older egressd with such a name still loads.
TEST(DomainNameTest, LastLabelStartingWithADigitIsAnAddressNotAName) {
  for (const char* bad :
       {"10.0.0.5", "10.0.0.256", "192.0.2.0-255", "10.0.0.1-10.0.0.5",
        "1.2.3.4.", "example.1com", "123", "2001", "*.10.0.0"}) {
    EXPECT_STATUS(CheckNotAddressLike(bad), absl::StatusCode::kInvalidArgument,
                  "looks like an address or address range")
        << bad;
    EXPECT_STATUS(policy::CanonicalNewRuleName(bad),
                  absl::StatusCode::kInvalidArgument, "ipBlock.cidr")
        << bad;
  }
  EXPECT_OK(policy::CanonicalRuleName("10.0.0.5"));
  EXPECT_OK(policy::CanonicalRuleName("192.0.2.0-255"));
  // Digits elsewhere are names.
  for (const char* good :
       {"a1.example.com", "1password.com", "123.example", "example.xn--p1ai",
        "xn--p1ai", "x.a1", "*.example.com", "*.0.example.com"}) {
    EXPECT_OK(CheckNotAddressLike(good)) << good;
    EXPECT_OK(policy::CanonicalNewRuleName(good)) << good;
  }
}

TEST(DomainNameTest, EmptyNamesAndLabelsAreRefused) {
  for (const char* bad : {"", ".", "a..com", ".a.com", "a.com.."}) {
    EXPECT_FALSE(NormalizeDomainName(bad).ok()) << bad;
  }
}

TEST(DomainNameTest, StarOnlyAsTheWholeFirstLabel) {
  for (const char* bad : {"*", "*.", "a.*.com", "*a.example.com",
                          "*.*.example.com", "example.*"}) {
    EXPECT_STATUS(DomainPattern::Parse(bad), absl::StatusCode::kInvalidArgument,
                  "bad domain name")
        << bad;
  }
  EXPECT_STATUS(DomainPattern::Parse("a*.example.com"),
                absl::StatusCode::kInvalidArgument, "whole first label");
}

// "*.*.example.com" was refused as `bad domain name "*.example.com": use
// letters, ...`: a string the user never wrote, and no word of the '*'.
// Errors quote the whole pattern.
TEST(DomainNameTest, ErrorsNameThePatternAsWritten) {
  EXPECT_EQ(DomainPattern::Parse("*.*.example.com").status().message(),
            "bad domain name \"*.*.example.com\": '*' stands only as the "
            "whole first label (*.NAME)");
  EXPECT_EQ(DomainPattern::Parse("*.a..com").status().message(),
            "bad domain name \"*.a..com\": empty label");
  EXPECT_EQ(DomainPattern::Parse("*.ex ample.com").status().message(),
            "bad domain name \"*.ex ample.com\": use letters, digits, '-' and "
            "'_' between dots");
  ASSERT_TRUE(DomainPattern::Parse("*.Example.COM.").ok());
  EXPECT_EQ(DomainPattern::Parse("*.Example.COM.")->ToString(),
            "*.example.com");
}

}  // namespace
}  // namespace egress::dns
