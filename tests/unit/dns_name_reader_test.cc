// Reading names out of DNS messages (userspace/dns/dns_name_reader.h):
// where a name ends, with and without compression.
#include "userspace/dns/dns_name_reader.h"

#include <vector>

#include "gtest/gtest.h"

namespace egress::dns {
namespace {

// "example.com" at 12, then "www" + a pointer to it at 25.
const std::vector<uint8_t> kMessage = {
    0, 0,   0,   0,   0,    0,   0,   0,   0, 0,   0,   0,       // header
    7, 'e', 'x', 'a', 'm',  'p', 'l', 'e', 3, 'c', 'o', 'm', 0,  // 12
    3, 'W', 'w', 'W', 0xc0, 12};                                 // 25

struct ReadCase {
  const char* description;
  size_t offset;
  const char* name;
  size_t end;
};

constexpr ReadCase kReads[] = {
    {"plain name ends after its root", 12, "example.com", 25},
    {"compressed name ends after its pointer", 25, "www.example.com", 31},
    {"the root alone", 24, "", 25},
    {"a suffix of a name", 20, "com", 25},
};

TEST(DnsNameReaderTest, NamesAndWhereTheyEnd) {
  for (const ReadCase& c : kReads) {
    DnsNameRead r = ReadDnsName(DnsMessage(kMessage), c.offset);
    EXPECT_EQ(r.reason, DnsReason::kOk) << c.description;
    EXPECT_EQ(r.name, c.name) << c.description;
    EXPECT_EQ(r.end, c.end) << c.description;
  }
}

TEST(DnsNameReaderTest, PointerIntoTheMiddleOfANameIsASuffix) {
  std::vector<uint8_t> m = kMessage;
  m.back() = 20;  // "com"
  EXPECT_EQ(ReadDnsName(DnsMessage(m), 25).name, "www.com");
}

TEST(DnsNameReaderTest, BeyondTheMessageIsTruncated) {
  EXPECT_EQ(ReadDnsName(DnsMessage(kMessage), kMessage.size()).reason,
            DnsReason::kTruncated);
}

TEST(DnsNameReaderTest, BeyondTheViewOfALongerMessageIsTooLong) {
  std::vector<uint8_t> m(kDnsMaxView + 10, 0);
  m[kDnsMaxView - 2] = 5;  // a label of 5 running past the view
  EXPECT_EQ(ReadDnsName(DnsMessage(m), kDnsMaxView - 2).reason,
            DnsReason::kTooLong);
  m.resize(kDnsMaxView + 2);  // ... and past the message
  EXPECT_EQ(ReadDnsName(DnsMessage(m), kDnsMaxView - 2).reason,
            DnsReason::kTruncated);
}

}  // namespace
}  // namespace egress::dns
