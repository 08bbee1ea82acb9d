// The kernel's DNS answer parser (bpf/lib/dns.h, run with BPF_PROG_TEST_RUN
// through the test-only object bpf/dns_parse_test.bpf.c) against the
// reference parser (userspace/dns): first the edge cases, then at least
// 100,000 generated and mutated messages. For every message the two must
// give the same outcome: the same reason, and for an answer the same
// question, chain and addresses with their TTLs. Reproducible: the seed is
// fixed (EGRESS_DNS_FUZZ_SEED and EGRESS_DNS_FUZZ_COUNT override it and the
// count), and a disagreement prints the message in hex.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/privileged/dns_kernel_parser.h"
#include "tests/testing/dns_cases.h"
#include "tests/testing/dns_fuzz.h"
#include "tests/testing/dns_outcome_diff.h"
#include "tests/testing/privileges.h"
#include "tests/testing/status_matchers.h"
#include "userspace/dns/dns_answer.h"

namespace egress::testing {
namespace {

using dns::DnsReason;
using dns::DnsReasonName;

constexpr uint64_t kDefaultSeed = 0x0e9e55d15ULL;
constexpr uint64_t kDefaultCount = 120000;
constexpr absl::Duration kTimeLimit = absl::Seconds(60);

uint64_t FromEnv(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  uint64_t value = 0;
  return text != nullptr && absl::SimpleAtoi(text, &value) ? value : fallback;
}

class DnsParseFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    ASSERT_OK_AND_ASSIGN(KernelDnsParser parser, KernelDnsParser::Load());
    parser_.emplace(std::move(parser));
  }

  // Runs `message` through both parsers: what the reference says, and how
  // the kernel's outcome differs from it ("" when it does not).
  std::pair<egress_dns_outcome, std::string> Compare(
      const std::vector<uint8_t>& message, bool ipv6) {
    const egress_dns_outcome want = KernelForm(dns::ParseDnsAnswer(message));
    absl::StatusOr<egress_dns_outcome> got = parser_->Parse(message, ipv6);
    if (!got.ok()) return {want, got.status().ToString()};
    return {want, DiffDnsOutcomes(want, *got)};
  }

  std::optional<KernelDnsParser> parser_;
};

TEST_F(DnsParseFuzzTest, EdgeCasesAgreeInTheKernel) {
  for (const DnsCase& c : DnsEdgeCases()) {
    for (bool ipv6 : {false, true}) {
      auto [want, diff] = Compare(c.message, ipv6);
      EXPECT_EQ(static_cast<DnsReason>(want.reason), c.want) << c.description;
      EXPECT_EQ(diff, "") << c.description << (ipv6 ? " (IPv6)" : " (IPv4)")
                          << "\nmessage: " << Hex(c.message);
    }
  }
}

TEST_F(DnsParseFuzzTest, GeneratedMessagesAgreeInTheKernel) {
  const uint64_t seed = FromEnv("EGRESS_DNS_FUZZ_SEED", kDefaultSeed);
  const uint64_t count = FromEnv("EGRESS_DNS_FUZZ_COUNT", kDefaultCount);
  DnsFuzzer fuzzer(seed);
  std::array<uint64_t, dns::kDnsReasonCount> reasons{};
  uint64_t with_addresses = 0, mismatches = 0, done = 0;
  const absl::Time start = absl::Now();
  for (; done < count; ++done) {
    if (absl::Now() - start > kTimeLimit) break;
    const std::vector<uint8_t> message = fuzzer.Next();
    auto [want, diff] = Compare(message, done % 2 == 1);
    ++reasons[want.reason % reasons.size()];
    if (want.naddrs > 0) ++with_addresses;
    if (!diff.empty() && ++mismatches <= 5) {
      ADD_FAILURE() << "message " << done << " (seed " << seed
                    << "): " << Hex(message) << "\n"
                    << diff;
    }
  }
  const absl::Duration took = absl::Now() - start;
  std::string histogram;
  for (int r = 0; r < dns::kDnsReasonCount; ++r) {
    absl::StrAppend(&histogram, " ", DnsReasonName(static_cast<DnsReason>(r)),
                    "=", reasons[r]);
  }
  std::cout << done << " messages in " << absl::FormatDuration(took)
            << " (seed " << seed << "), kernel parse "
            << parser_->total_run_ns() / (done ? done : 1) << " ns/message, "
            << parser_->verified_insns() << " insns verified, "
            << parser_->xlated_bytes() << " bytes xlated\n"
            << with_addresses << " answers with addresses;" << histogram
            << "\n";
  EXPECT_EQ(done, count) << "not done in " << kTimeLimit;
  EXPECT_EQ(mismatches, 0u);
  // The stream must reach deep into the parse, not just fail early.
  EXPECT_GE(with_addresses, done / 10);
  EXPECT_GE(reasons[EGRESS_DNS_OK], done / 4);
  for (int r = 0; r < dns::kDnsReasonCount; ++r) {
    EXPECT_GT(reasons[r], 0u) << DnsReasonName(static_cast<DnsReason>(r));
  }
}

}  // namespace
}  // namespace egress::testing
