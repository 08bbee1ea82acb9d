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

TEST(AnswerNamesTest, AddressesOfAnAnswerGetItsName) {
  AnswerNames names;
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
  AnswerNames names;
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
  AnswerNames names;
  std::array<uint8_t, 16> v6{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  names.Remember("web", Answer("v6.example", EGRESS_DNS_TYPE_AAAA, {v6}));
  EXPECT_EQ(names.NameOf("web", 6, v6), "v6.example");
  EXPECT_EQ(names.NameOf("web", 4, v6), "");
}

TEST(AnswerNamesTest, NamesNotAsTheKernelWritesThemAreIgnored) {
  AnswerNames names;
  names.Remember("web", Answer("", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 9)}));
  names.Remember("web",
                 Answer("Bad Name", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 9)}));
  names.Remember("web", Answer("x.example", 16, {V4(127, 0, 0, 9)}));  // TXT
  EXPECT_EQ(names.size("web"), 0u);
}

TEST(AnswerNamesTest, OldestAddressesGoFirstWhenFull) {
  AnswerNames names(2);
  names.Remember("web", Answer("a.example", EGRESS_DNS_TYPE_A,
                               {V4(127, 0, 0, 1), V4(127, 0, 0, 2)}));
  names.Remember("web",
                 Answer("b.example", EGRESS_DNS_TYPE_A, {V4(127, 0, 0, 3)}));
  EXPECT_EQ(names.size("web"), 2u);
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 1)), "");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 2)), "a.example");
  EXPECT_EQ(names.NameOf("web", 4, V4(127, 0, 0, 3)), "b.example");
}

}  // namespace
}  // namespace egress
