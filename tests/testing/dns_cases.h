// DNS messages with the outcome the parse must give, one per rule of the
// parse (docs/dns.md): what the unit tests check the reference parser
// against and what the fuzz test first runs through the kernel's parser.
#ifndef EGRESS_TESTS_TESTING_DNS_CASES_H_
#define EGRESS_TESTS_TESTING_DNS_CASES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/dns/dns_reason.h"

namespace egress {
namespace testing {

struct DnsCase {
  std::string description;
  std::vector<uint8_t> message;
  dns::DnsReason want;
};

// Together they give every DnsReason at least once.
std::vector<DnsCase> DnsEdgeCases();

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_DNS_CASES_H_
