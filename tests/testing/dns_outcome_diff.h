// Comparing the kernel's DNS parse (struct egress_dns_outcome, left by
// bpf/lib/dns.h) with the reference parser's (userspace/dns).
#ifndef EGRESS_TESTS_TESTING_DNS_OUTCOME_DIFF_H_
#define EGRESS_TESTS_TESTING_DNS_OUTCOME_DIFF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "egress/dns_abi.h"
#include "userspace/dns/dns_answer.h"

namespace egress {
namespace testing {

// What the kernel must leave for this reference outcome. The chain is kept
// as its count and last name, as the kernel keeps it.
egress_dns_outcome KernelForm(const dns::DnsOutcome& outcome);

// "" when `got` says what `want` says: the same reason and, for an answer,
// the same id, flags, rcode, type, names, and addresses with their TTLs in
// the same order. Otherwise one line per difference.
std::string DiffDnsOutcomes(const egress_dns_outcome& want,
                            const egress_dns_outcome& got);

// "45 00 1c ..." for a failure message.
std::string Hex(const std::vector<uint8_t>& bytes);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_DNS_OUTCOME_DIFF_H_
