#include "userspace/daemon/answer_names.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace egress {
namespace {

egress_dns_answer_event Answer(
    const std::string& name, uint16_t qtype,
    std::initializer_list<std::array<uint8_t, 16>> addrs) {
  egress_dns_answer_event a{};
  a.kind = EGRESS_EVENT_DNS_ANSWER;
  a.qtype = qtype;
  std::memcpy(a.qname, name.data(), name.size());
  for (const auto& addr : addrs) {
    std::memcpy(a.addrs[a.naddrs].addr, addr.data(), 16);
    a.addrs[a.naddrs].ttl = 60;
    ++a.naddrs;
  }
  return a;
}

std::array<uint8_t, 16> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

// The tests below that are not about time: every answer at kAt, every
// look-up at once.
constexpr int64_t kAt = int64_t{1'000'000} * 1'000'000'000;
class Names : public AnswerNames {
 public:
  using AnswerNames::AnswerNames;
  void Remember(const std::string& target, const egress_dns_answer_event& a) {
    AnswerNames::Remember(target, a, kAt, 30);
  }
  std::string NameOf(const std::string& target, uint8_t family,
                     const std::array<uint8_t, 16>& addr) const {
    return AnswerNames::NameOf(target, family, addr, kAt);
  }
};

TEST(AnswerNamesTest, AddressesOfAnAnswerGetItsName) {
  Names names;
  names.Remember("web", Answer("api.example.com", EGRESS_DNS_TYPE_A,
                               {V4(127, 1, 0, 1), V4(127, 1, 0, 2)}));
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 1)), "api.example.com");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 2)), "api.example.com");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 3)), "");
  // Per target.
  EXPECT_EQ(names.NameOf("db", 4, V4(127, 1, 0, 1)), "");
  // An IPv4-mapped connect is the IPv4 address.
  std::array<uint8_t, 16> mapped{0, 0, 0,    0,    0,   0, 0, 0,
                                 0, 0, 0xff, 0xff, 127, 1, 0, 2};
  EXPECT_EQ(names.NameOf("web", 6, mapped), "api.example.com");
  // A later answer naming the address adds its name: a connect to the
  // address may have meant either (a CDN, a virtual host).
  names.Remember(
      "web", Answer("cdn.example.net", EGRESS_DNS_TYPE_A, {V4(127, 1, 0, 1)}));
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 1)),
            "api.example.com,cdn.example.net");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 2)), "api.example.com");
  names.Forget("web");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 2)), "");
}

TEST(AnswerNamesTest, AnAddressKeepsItsLastFourNames) {
  Names names;
  for (const char* name :
       {"a.test", "b.test", "c.test", "d.test", "e.test", "b.test"}) {
    names.Remember("web", Answer(name, EGRESS_DNS_TYPE_A, {V4(127, 1, 0, 9)}));
  }
  // a.test went first; b.test, asked again, is the newest.
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 1, 0, 9)),
            "b.test,c.test,d.test,e.test");
  EXPECT_EQ(names.size("web"), 1u);
}

TEST(AnswerNamesTest, AaaaAnswersBindIpv6Addresses) {
  Names names;
  std::array<uint8_t, 16> v6{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  names.Remember("web", Answer("v6.example", EGRESS_DNS_TYPE_AAAA, {v6}));
  EXPECT_EQ(names.NameOf("web", 6, v6), "v6.example");
  EXPECT_EQ(names.NameOf("web", 4, v6), "");
}

TEST(AnswerNamesTest, NamesNotAsTheKernelWritesThemAreIgnored) {
  Names names;
  names.Remember("web", Answer("", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 9)}));
  names.Remember("web",
                 Answer("Bad Name", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 9)}));
  names.Remember("web", Answer("x.example", 16, {V4(127, 0, 0, 9)}));  // TXT
  EXPECT_EQ(names.size("web"), 0u);
}

TEST(AnswerNamesTest, OldestAddressesGoFirstWhenFull) {
  Names names(2);
  names.Remember("web", Answer("a.example", EGRESS_DNS_TYPE_A,
                               {V4(127, 0, 0, 1), V4(127, 0, 0, 2)}));
  names.Remember("web",
                 Answer("b.example", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 3)}));
  EXPECT_EQ(names.size("web"), 2u);
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 1)), "");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 2)), "a.example");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 3)), "b.example");
}

// A name is bound as long as the kernel would bind it: max(TTL, floor)
// after the answer. Past that, the address reached names nothing (a
// connect then, enforced, needs an address rule).
TEST(AnswerNamesTest, ANameIsBoundForMaxOfTtlAndFloor) {
  AnswerNames names;
  constexpr int64_t kSecond = 1'000'000'000;
  egress_dns_answer_event a =
      Answer("db.other.test", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 22)});
  a.addrs[0].ttl = 1;  // below the floor
  names.Remember("web", a, kAt, 30);
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 22), kAt + 30 * kSecond),
            "db.other.test");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 22), kAt + 40 * kSecond), "");
  // A long TTL keeps it longer; a later answer with a short one does not
  // cut that short.
  a.addrs[0].ttl = 300;
  names.Remember("web", a, kAt, 30);
  a.addrs[0].ttl = 1;
  names.Remember("web", a, kAt + kSecond, 30);
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 22), kAt + 300 * kSecond),
            "db.other.test");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 22), kAt + 301 * kSecond), "");
}

// Kept and restored (learned.db), a name keeps its expiry; one kept without
// it (an older egressd) names nothing.
TEST(AnswerNamesTest, RestoredNamesKeepTheirExpiry) {
  AnswerNames names;
  constexpr int64_t kSecond = 1'000'000'000;
  names.Remember(
      "web", Answer("api.example.com", EGRESS_DNS_TYPE_A, {V4(127, 1, 0, 1)}),
      kAt, 30);
  auto kept = names.TakeChanged();
  ASSERT_EQ(kept["web"].size(), 1u);
  AnswerNames restored;
  restored.Restore("web", kept["web"][0]);
  EXPECT_EQ(restored.NameOf("web", 4, V4(127, 1, 0, 1), kAt + 60 * kSecond),
            "api.example.com");
  EXPECT_EQ(restored.NameOf("web", 4, V4(127, 1, 0, 1), kAt + 61 * kSecond),
            "");
  AnswerNames old;
  old.Restore("web", {kept["web"][0].key, "api.example.com"});
  EXPECT_EQ(old.NameOf("web", 4, V4(127, 1, 0, 1), kAt), "");
}

}  // namespace
}  // namespace egress
