// Reading a possibly compressed name (RFC 1035 4.1.4) out of a DNS message.
#ifndef EGRESS_USERSPACE_DNS_DNS_NAME_READER_H_
#define EGRESS_USERSPACE_DNS_DNS_NAME_READER_H_

#include <cstddef>
#include <string>

#include "userspace/dns/dns_message.h"
#include "userspace/dns/dns_reason.h"

namespace egress::dns {

inline constexpr size_t kDnsMaxWireName = EGRESS_DNS_MAX_WIRE_NAME;
inline constexpr int kDnsMaxPointers = EGRESS_DNS_MAX_POINTERS;

struct DnsNameRead {
  DnsReason reason = DnsReason::kOk;  // the rest is set only when kOk
  std::string name;  // text form: lower case, '.'-joined, "" for the root
  size_t end = 0;    // the offset after the name where it was written
};

// Reads the name written at `offset`. Label by label, stopping at the first
// problem:
//   the length octet is not readable: kTruncated or kTooLong;
//   a pointer (11xxxxxx): its second octet not readable (kTruncated,
//     kTooLong); its target not before the pointer (kPointerForward); not
//     before the run of labels the pointer ends (kPointerLoop: targets
//     strictly decrease, so no name loops); more than kDnsMaxPointers
//     pointers (kTooManyPointers);
//   a length octet 64..191 (01xxxxxx, 10xxxxxx): kLabelTooLong;
//   a label that would make the name, root included, longer than
//     kDnsMaxWireName octets: kNameTooLong; that is not readable:
//     kTruncated or kTooLong; with a character other than a letter, digit,
//     '-' or '_': kNameChar.
// Letters are folded to lower case.
DnsNameRead ReadDnsName(const DnsMessage& message, size_t offset);

}  // namespace egress::dns

#endif  // EGRESS_USERSPACE_DNS_DNS_NAME_READER_H_
