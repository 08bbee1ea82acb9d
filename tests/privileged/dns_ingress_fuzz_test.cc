// The DNS answer fuzz through the real program: egressd's own skb_ingress of
// a target with name rules, run with BPF_PROG_TEST_RUN on 100,000 generated
// and mutated answers (tests/testing/dns_fuzz.h), each from port 53 to a
// socket that asked nothing. Every one must be accounted for in the target's
// DNS counters, each exactly where the reference parser (userspace/dns) puts
// it: malformed when it fails to parse, "no matching query" otherwise; none
// binds anything. Bounded in time; reproducible (fixed seed).
#include <bpf/bpf.h>
#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/privileged/dns_kernel_parser.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/testing/dns_fuzz.h"
#include "userspace/dns/dns_answer.h"

namespace egress::testing {
namespace {

constexpr uint64_t kSeed = 0x5eed1e55ULL;
constexpr uint64_t kCount = 100000;
constexpr absl::Duration kTimeLimit = absl::Seconds(60);

// A set per target: its skb_ingress carries the target id as a constant.
// The shared set's program finds the id in the cgroup storage of the
// attachment it runs for, and BPF_PROG_TEST_RUN runs it with none (id 0:
// the counters of no target).
class DnsIngressFuzzTest : public EgressdTest {
 protected:
  void SetUp() override {
    extra_daemon_args_ = {"--noshared_program_set"};
    EgressdTest::SetUp();
  }
};

TEST_F(DnsIngressFuzzTest, RealIngressProgramAccountsForEveryAnswer) {
  AddTarget("web");
  CtlOk({"allow", "443/tcp", "api.example.test"});
  const UniqueFd prog_fd = OwnProgram("web", "skb_ingress");
  ASSERT_TRUE(prog_fd.valid());
  const int prog = prog_fd.get();

  DnsFuzzer fuzzer(kSeed);
  uint64_t done = 0, malformed = 0, failed_runs = 0;
  const absl::Time start = absl::Now();
  for (; done < kCount && absl::Now() - start < kTimeLimit; ++done) {
    const std::vector<uint8_t> message = fuzzer.Next();
    if (dns::ReasonOf(dns::ParseDnsAnswer(message)) != dns::DnsReason::kOk) {
      ++malformed;
    }
    const std::vector<uint8_t> frame = DnsAnswerFrame(message, done % 2 == 1);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .repeat = 1);
    if (bpf_prog_test_run_opts(prog, &opts) != 0 || opts.retval != 1) {
      ++failed_runs;
    }
  }
  std::cout << done << " answers through skb_ingress in "
            << absl::FormatDuration(absl::Now() - start) << ", " << malformed
            << " malformed\n";
  EXPECT_EQ(done, kCount) << "not done in " << kTimeLimit;
  EXPECT_EQ(failed_runs, 0u);
  EXPECT_GE(malformed, done / 4);  // the stream reaches both outcomes
  EXPECT_LE(malformed, done * 3 / 4);

  const nlohmann::json dns = TargetStatus("web")["dns"];
  ASSERT_TRUE(dns.is_object());
  EXPECT_EQ(dns["answers"].get<uint64_t>(), done) << dns;
  EXPECT_EQ(dns["ignored_malformed"].get<uint64_t>(), malformed) << dns;
  EXPECT_EQ(dns["ignored_no_query"].get<uint64_t>(), done - malformed) << dns;
  EXPECT_EQ(dns["answers_matched"].get<uint64_t>(), 0u) << dns;
  EXPECT_EQ(dns["bindings_learned"].get<uint64_t>(), 0u) << dns;
}

}  // namespace
}  // namespace egress::testing
