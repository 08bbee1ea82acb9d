// The reference DNS answer parser (userspace/dns/dns_answer.h): what answers
// yield, and one reason for each way a message is refused.
#include "userspace/dns/dns_answer.h"

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/dns_builder.h"
#include "tests/testing/dns_cases.h"

namespace egress::dns {
namespace {

using ::egress::testing::DnsA;
using ::egress::testing::DnsAaaa;
using ::egress::testing::DnsCname;
using ::egress::testing::DnsMessageBuilder;
using ::egress::testing::DnsRaw;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint16_t kAaaa = 28;

DnsAnswer AnswerOf(const std::vector<uint8_t>& message) {
  DnsOutcome outcome = ParseDnsAnswer(message);
  EXPECT_EQ(ReasonOf(outcome), DnsReason::kOk)
      << DnsReasonName(ReasonOf(outcome));
  const DnsAnswer* answer = std::get_if<DnsAnswer>(&outcome);
  return answer ? *answer : DnsAnswer{};
}

DnsAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint32_t ttl) {
  return DnsAddress{.bytes = {a, b, c, d}, .ttl = ttl};
}

TEST(DnsAnswerTest, EveryEdgeCaseGivesItsReason) {
  for (const auto& c : testing::DnsEdgeCases()) {
    EXPECT_EQ(ReasonOf(ParseDnsAnswer(c.message)), c.want)
        << c.description << ": got "
        << DnsReasonName(ReasonOf(ParseDnsAnswer(c.message))) << ", want "
        << DnsReasonName(c.want);
  }
}

TEST(DnsAnswerTest, EdgeCasesCoverEveryReason) {
  std::set<DnsReason> seen;
  for (const auto& c : testing::DnsEdgeCases()) seen.insert(c.want);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kDnsReasonCount));
}

TEST(DnsAnswerTest, AAnswerYieldsItsAddressesAndTtls) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Id(0xbeef)
                             .Question("www.example.com")
                             .Answer(DnsA("www.example.com", "192.0.2.1", 60))
                             .Answer(DnsA("www.example.com", "192.0.2.2", 70))
                             .Build());
  EXPECT_EQ(a.id, 0xbeef);
  EXPECT_EQ(a.flags, 0x8180);
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.qname, "www.example.com");
  EXPECT_EQ(a.qtype, DnsType::kA);
  EXPECT_THAT(a.cnames, IsEmpty());
  EXPECT_THAT(a.addresses,
              ElementsAre(V4(192, 0, 2, 1, 60), V4(192, 0, 2, 2, 70)));
}

TEST(DnsAnswerTest, AaaaAnswerYieldsSixteenBytes) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Question("v6.example.com", kAaaa)
                             .Answer(DnsAaaa("v6.example.com", "2001:db8::5"))
                             .Build());
  EXPECT_EQ(a.qtype, DnsType::kAaaa);
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_EQ(a.addresses[0].bytes,
            std::vector<uint8_t>(
                {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}));
}

TEST(DnsAnswerTest, CnameChainLeadsToTheAddresses) {
  DnsAnswer a = AnswerOf(
      DnsMessageBuilder()
          .Question("www.example.com")
          .Answer(DnsCname("www.example.com", "www.example.com.cdn.net"))
          .Answer(DnsCname("www.example.com.cdn.net", "e1.cdn.net"))
          .Answer(DnsA("e1.cdn.net", "198.51.100.7"))
          .Answer(DnsA("other.example.org", "203.0.113.9"))
          .Build());
  EXPECT_THAT(a.cnames, ElementsAre("www.example.com.cdn.net", "e1.cdn.net"));
  EXPECT_THAT(a.addresses, ElementsAre(V4(198, 51, 100, 7, 300)));
}

TEST(DnsAnswerTest, RecordsCountOnlyInChainOrder) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Question("www.example.com")
                             .Answer(DnsA("e1.cdn.net", "198.51.100.7"))
                             .Answer(DnsCname("www.example.com", "e1.cdn.net"))
                             .Answer(DnsA("www.example.com", "198.51.100.8"))
                             .Build());
  EXPECT_THAT(a.cnames, ElementsAre("e1.cdn.net"));
  EXPECT_THAT(a.addresses, IsEmpty());
}

TEST(DnsAnswerTest, NamesCompareWithoutCase) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Question("WWW.Example.COM")
                             .Compress(false)
                             .Answer(DnsA("www.EXAMPLE.com", "192.0.2.1"))
                             .Build());
  EXPECT_EQ(a.qname, "www.example.com");
  EXPECT_EQ(a.addresses.size(), 1u);
}

TEST(DnsAnswerTest, OnlyAddressesOfTheQuestionsTypeCount) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Question("www.example.com")
                             .Answer(DnsAaaa("www.example.com", "2001:db8::1"))
                             .Answer(DnsRaw("www.example.com", 46, {1, 2, 3}))
                             .Answer(DnsA("www.example.com", "192.0.2.1"))
                             .Build());
  EXPECT_THAT(a.addresses, ElementsAre(V4(192, 0, 2, 1, 300)));
}

TEST(DnsAnswerTest, ErrorRcodeYieldsTheQuestionOnly) {
  DnsAnswer a = AnswerOf(DnsMessageBuilder()
                             .Flags(0x8183)
                             .Question("gone.example.com")
                             .Answer(DnsA("gone.example.com", "192.0.2.1"))
                             .Build());
  EXPECT_EQ(a.rcode, 3);
  EXPECT_EQ(a.qname, "gone.example.com");
  EXPECT_THAT(a.addresses, IsEmpty());
}

TEST(DnsAnswerTest, TtlWithTheHighBitReadsAsZero) {
  DnsAnswer a =
      AnswerOf(DnsMessageBuilder()
                   .Question("a.example")
                   .Answer(DnsA("a.example", "192.0.2.1", 0x80000001u))
                   .Answer(DnsA("a.example", "192.0.2.2", 0x7fffffffu))
                   .Build());
  EXPECT_THAT(a.addresses,
              ElementsAre(V4(192, 0, 2, 1, 0), V4(192, 0, 2, 2, 0x7fffffffu)));
}

TEST(DnsAnswerTest, CompressionChangesNothing) {
  DnsMessageBuilder b;
  b.Question("www.example.com")
      .Answer(DnsCname("www.example.com", "edge.example.com"))
      .Answer(DnsA("edge.example.com", "192.0.2.1"));
  const std::vector<uint8_t> compressed = b.Build();
  const std::vector<uint8_t> plain = b.Compress(false).Build();
  EXPECT_LT(compressed.size(), plain.size());
  EXPECT_EQ(AnswerOf(compressed), AnswerOf(plain));
}

TEST(DnsAnswerTest, ReasonsHaveNames) {
  EXPECT_EQ(DnsReasonName(DnsReason::kPointerLoop), "pointer_loop");
  EXPECT_EQ(DnsReasonName(DnsReason::kRdlength), "rdlength");
  EXPECT_EQ(DnsReasonName(static_cast<DnsReason>(200)), "unknown");
}

}  // namespace
}  // namespace egress::dns
