// The kernel's DNS answer parser (bpf/lib/dns.h), loaded from the test-only
// object bpf/dns_parse_test.bpf.c and run on one message at a time with
// BPF_PROG_TEST_RUN: nothing is attached, no packet is sent.
#ifndef EGRESS_TESTS_PRIVILEGED_DNS_KERNEL_PARSER_H_
#define EGRESS_TESTS_PRIVILEGED_DNS_KERNEL_PARSER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "egress/dns_abi.h"

struct dns_parse_test;

namespace egress {
namespace testing {

// Ethernet, IP (loopback addresses, UDP) and UDP from port 53 to port
// 40000, then `message`: a frame for BPF_PROG_TEST_RUN of a cgroup_skb or
// test program. Checksums are left zero: nothing checks them here.
std::vector<uint8_t> DnsAnswerFrame(const std::vector<uint8_t>& message,
                                    bool ipv6);

class KernelDnsParser {
 public:
  // Loads the program (the verifier runs here). Root only. The program and
  // its map go with the parser.
  static absl::StatusOr<KernelDnsParser> Load();

  // Runs the program on `message` as the payload of a UDP datagram over
  // IPv4 or IPv6 and returns what it left. Internal when the run fails or
  // the program did not run once on exactly this message.
  absl::StatusOr<egress_dns_outcome> Parse(const std::vector<uint8_t>& message,
                                           bool ipv6);

  // Nanoseconds the kernel reported for the runs so far.
  uint64_t total_run_ns() const { return total_run_ns_; }
  // From the program's info: instructions the verifier processed, and the
  // program's size after rewriting.
  uint32_t verified_insns() const { return verified_insns_; }
  uint32_t xlated_bytes() const { return xlated_bytes_; }

 private:
  struct Deleter {
    void operator()(dns_parse_test* skel) const;
  };
  explicit KernelDnsParser(dns_parse_test* skel) : skel_(skel) {}

  std::unique_ptr<dns_parse_test, Deleter> skel_;
  uint64_t total_run_ns_ = 0;
  uint32_t verified_insns_ = 0;
  uint32_t xlated_bytes_ = 0;
};

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_PRIVILEGED_DNS_KERNEL_PARSER_H_
