#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/policy/rule.h"

namespace egress::policy {
namespace {

using ::testing::HasSubstr;

Cidr MustParse(const std::string& text) {
  absl::StatusOr<Cidr> c = Cidr::Parse(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status();
  return c.ok() ? *c : Cidr{};
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Cidr> c = Cidr::Parse(text);
  EXPECT_FALSE(c.ok()) << text << " parsed as " << c->ToString();
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(CidrTest, ParsesIpv4Host) {
  const Cidr c = MustParse("10.0.0.5");
  EXPECT_EQ(c.family, 4);
  EXPECT_EQ(c.prefix_len, 32);
  EXPECT_EQ(c.addr[0], 10);
  EXPECT_EQ(c.addr[3], 5);
  for (int i = 4; i < 16; ++i) EXPECT_EQ(c.addr[i], 0) << i;
  EXPECT_EQ(c.ToString(), "10.0.0.5");
}

TEST(CidrTest, ParsesIpv4Network) {
  const Cidr c = MustParse("10.0.0.0/8");
  EXPECT_EQ(c.family, 4);
  EXPECT_EQ(c.prefix_len, 8);
  EXPECT_EQ(c.ToString(), "10.0.0.0/8");
  EXPECT_EQ(MustParse("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_EQ(MustParse("10.0.0.5/32").ToString(), "10.0.0.5");
  EXPECT_EQ(MustParse("10.0.0.5/32"), MustParse("10.0.0.5"));
}

TEST(CidrTest, ParsesIpv6) {
  const Cidr net = MustParse("2001:db8::/32");
  EXPECT_EQ(net.family, 6);
  EXPECT_EQ(net.prefix_len, 32);
  EXPECT_EQ(net.addr[0], 0x20);
  EXPECT_EQ(net.addr[1], 0x01);
  EXPECT_EQ(net.addr[2], 0x0d);
  EXPECT_EQ(net.addr[3], 0xb8);
  EXPECT_EQ(net.ToString(), "2001:db8::/32");
  const Cidr host = MustParse("2001:db8::1");
  EXPECT_EQ(host.prefix_len, 128);
  EXPECT_EQ(host.ToString(), "2001:db8::1");
  EXPECT_EQ(MustParse("::/0").ToString(), "::/0");
  EXPECT_EQ(MustParse("::1").ToString(), "::1");
}

TEST(CidrTest, MappedIpv4BecomesIpv4) {
  EXPECT_EQ(MustParse("::ffff:10.0.0.5"), MustParse("10.0.0.5"));
  EXPECT_EQ(MustParse("::ffff:10.0.0.5/128"), MustParse("10.0.0.5"));
  EXPECT_EQ(MustParse("::ffff:10.0.0.0/104"), MustParse("10.0.0.0/8"));
  EXPECT_EQ(MustParse("::ffff:0.0.0.0/96"), MustParse("0.0.0.0/0"));
  // Shorter than /96 is a real IPv6 network that happens to contain the
  // mapped range.
  const Cidr wide = MustParse("::/80");
  EXPECT_EQ(wide.family, 6);
  EXPECT_EQ(wide.prefix_len, 80);
  EXPECT_EQ(wide.ToString(), "::/80");
}

TEST(CidrTest, HostBitsSetIsAnErrorWithSuggestion) {
  EXPECT_EQ(ErrorOf("10.0.0.1/8"),
            "10.0.0.1/8: host bits set; did you mean 10.0.0.0/8?");
  EXPECT_EQ(ErrorOf("192.168.1.77/24"),
            "192.168.1.77/24: host bits set; did you mean 192.168.1.0/24?");
  EXPECT_EQ(ErrorOf("2001:db8::1/32"),
            "2001:db8::1/32: host bits set; did you mean 2001:db8::/32?");
  EXPECT_EQ(ErrorOf("::ffff:10.0.0.1/104"),
            "::ffff:10.0.0.1/104: host bits set; did you mean "
            "::ffff:10.0.0.0/104?");
}

TEST(CidrTest, BadAddresses) {
  EXPECT_EQ(ErrorOf("10.0.0.256"), "bad address '10.0.0.256'");
  EXPECT_EQ(ErrorOf("10.0.0"), "bad address '10.0.0'");
  EXPECT_EQ(ErrorOf(""), "bad address ''");
  EXPECT_EQ(ErrorOf("example.org"), "bad address 'example.org'");
  EXPECT_EQ(ErrorOf("2001:db8:::1"), "bad address '2001:db8:::1'");
  EXPECT_EQ(ErrorOf("/8"), "bad address '/8'");
}

TEST(CidrTest, BadPrefixLengths) {
  EXPECT_EQ(ErrorOf("10.0.0.0/33"),
            "bad prefix length in '10.0.0.0/33': must be 0-32");
  EXPECT_EQ(ErrorOf("10.0.0.0/"),
            "bad prefix length in '10.0.0.0/': must be 0-32");
  EXPECT_EQ(ErrorOf("10.0.0.0/-1"),
            "bad prefix length in '10.0.0.0/-1': must be 0-32");
  EXPECT_EQ(ErrorOf("10.0.0.0/+8"),
            "bad prefix length in '10.0.0.0/+8': must be 0-32");
  EXPECT_EQ(ErrorOf("10.0.0.0/8/8"),
            "bad prefix length in '10.0.0.0/8/8': must be 0-32");
  EXPECT_EQ(ErrorOf("2001:db8::/129"),
            "bad prefix length in '2001:db8::/129': must be 0-128");
}

TEST(CidrTest, ContainsRespectsBoundaries) {
  const Cidr net = MustParse("10.0.0.0/24");
  EXPECT_TRUE(net.Contains(MustParse("10.0.0.0")));
  EXPECT_TRUE(net.Contains(MustParse("10.0.0.255")));
  EXPECT_FALSE(net.Contains(MustParse("10.0.1.0")));
  EXPECT_FALSE(net.Contains(MustParse("9.255.255.255")));
  EXPECT_TRUE(net.Contains(MustParse("10.0.0.128/25")));
  EXPECT_TRUE(net.Contains(net));
  EXPECT_FALSE(net.Contains(MustParse("10.0.0.0/23")));
  EXPECT_TRUE(MustParse("0.0.0.0/0").Contains(MustParse("255.255.255.255")));
  // Families never mix.
  EXPECT_FALSE(MustParse("::/0").Contains(MustParse("10.0.0.1")));
  EXPECT_FALSE(MustParse("0.0.0.0/0").Contains(MustParse("::1")));
  EXPECT_TRUE(
      MustParse("2001:db8::/32").Contains(MustParse("2001:db8:ffff::1")));
  EXPECT_FALSE(MustParse("2001:db8::/32").Contains(MustParse("2001:db9::")));
}

TEST(CidrTest, ContainsAddressOddPrefix) {
  const Cidr net = MustParse("10.0.0.0/23");
  EXPECT_TRUE(net.ContainsAddress(4, MustParse("10.0.1.255").addr));
  EXPECT_FALSE(net.ContainsAddress(4, MustParse("10.0.2.0").addr));
  EXPECT_FALSE(net.ContainsAddress(6, MustParse("10.0.1.255").addr));
}

TEST(CidrTest, RoundTripsThroughToString) {
  for (const char* text :
       {"10.0.0.5", "10.0.0.0/8", "0.0.0.0/0", "172.16.0.0/12", "2001:db8::/32",
        "2001:db8::1", "::/0", "fe80::/10", "10.1.2.3/32"}) {
    const Cidr c = MustParse(text);
    EXPECT_EQ(MustParse(c.ToString()), c) << text;
    EXPECT_TRUE(c.Valid()) << text;
  }
}

TEST(CidrTest, ValidChecksInvariant) {
  Cidr c = MustParse("10.0.0.0/8");
  c.addr[1] = 1;
  EXPECT_FALSE(c.Valid());
  c = MustParse("10.0.0.0/8");
  c.addr[8] = 1;  // beyond the IPv4 bytes
  EXPECT_FALSE(c.Valid());
  c = MustParse("10.0.0.0/8");
  c.prefix_len = 33;
  EXPECT_FALSE(c.Valid());
  c.family = 5;
  c.prefix_len = 8;
  EXPECT_FALSE(c.Valid());
  EXPECT_TRUE(Cidr::AnyV4().Valid());
  EXPECT_TRUE(Cidr::AnyV6().Valid());
  EXPECT_EQ(Cidr::AnyV4().ToString(), "0.0.0.0/0");
  EXPECT_EQ(Cidr::AnyV6().ToString(), "::/0");
}

TEST(ProtoTest, NamesRoundTrip) {
  for (Proto p : {Proto::kTcp, Proto::kUdp, Proto::kIcmp, Proto::kRaw}) {
    absl::StatusOr<Proto> back = ParseProtoName(ProtoName(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  EXPECT_EQ(ProtoName(Proto::kTcp), "tcp");
  EXPECT_EQ(ProtoName(Proto::kIcmp), "icmp");
  EXPECT_EQ(ParseProtoName("sctp").status().message(),
            "unknown protocol 'sctp'");
  EXPECT_EQ(ActionName(Action::kAllow), "allow");
  EXPECT_EQ(ActionName(Action::kDeny), "deny");
}

TEST(RuleMatchesTest, MatchesPortsAndDestinations) {
  Rule r;
  r.ports = {{Proto::kTcp, 1000, 2000}, {Proto::kIcmp}};
  r.destinations = {MustParse("10.0.0.0/24")};
  const auto in = MustParse("10.0.0.255").addr;
  const auto out = MustParse("10.0.1.0").addr;
  EXPECT_TRUE(RuleMatches(r, 6, 1000, 4, in));
  EXPECT_TRUE(RuleMatches(r, 6, 2000, 4, in));
  EXPECT_FALSE(RuleMatches(r, 6, 999, 4, in));
  EXPECT_FALSE(RuleMatches(r, 6, 2001, 4, in));
  EXPECT_FALSE(RuleMatches(r, 17, 1500, 4, in));
  EXPECT_FALSE(RuleMatches(r, 6, 1500, 4, out));
  EXPECT_TRUE(RuleMatches(r, 1, 0, 4, in));    // ICMP to v4
  EXPECT_FALSE(RuleMatches(r, 58, 0, 4, in));  // ICMPv6 to v4: no
  r.destinations.clear();                      // anywhere
  EXPECT_TRUE(RuleMatches(r, 58, 0, 6, MustParse("2001:db8::1").addr));
  EXPECT_FALSE(RuleMatches(r, 1, 0, 6, MustParse("2001:db8::1").addr));
  r.ports = {{Proto::kRaw}};
  EXPECT_FALSE(RuleMatches(r, 255, 0, 4, in));
}

}  // namespace
}  // namespace egress::policy
