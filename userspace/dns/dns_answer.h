// The reference DNS answer parser: a message's bytes -> the addresses it
// binds to the name asked for, or the reason it binds none. Written to be
// read, not to be fast: bpf/lib/dns.h makes the same parse in the kernel and
// tests/privileged/dns_parse_fuzz_test.cc holds the two equal. docs/dns.md
// states the parse, its bounds and what it ignores. Pure: no I/O.
#ifndef EGRESS_USERSPACE_DNS_DNS_ANSWER_H_
#define EGRESS_USERSPACE_DNS_DNS_ANSWER_H_

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/types/span.h"
#include "userspace/dns/dns_reason.h"

namespace egress::dns {

inline constexpr size_t kDnsMaxAnswers = EGRESS_DNS_MAX_ANSWERS;

enum class DnsType : uint16_t {
  kA = EGRESS_DNS_TYPE_A,
  kAaaa = EGRESS_DNS_TYPE_AAAA,
};

struct DnsAddress {
  std::vector<uint8_t> bytes;  // 4 for A, 16 for AAAA, network order
  uint32_t ttl = 0;            // seconds; above 2^31-1 reads as 0 (RFC 2181)
  bool operator==(const DnsAddress&) const = default;
};

struct DnsAnswer {
  uint16_t id = 0;     // transaction id
  uint16_t flags = 0;  // the header's flags word
  uint8_t rcode = 0;   // flags & 0xf; records are read only when 0
  std::string qname;   // lower case, no trailing dot
  DnsType qtype = DnsType::kA;
  // The CNAME targets followed from qname, in order.
  std::vector<std::string> cnames;
  // The records of type qtype owned by qname or a name of the chain, in
  // message order.
  std::vector<DnsAddress> addresses;
  bool operator==(const DnsAnswer&) const = default;
};

// Exactly one of: a typed answer, or why there is none (never kOk).
using DnsOutcome = std::variant<DnsAnswer, DnsReason>;

// Parses a DNS response (the UDP payload, or a TCP message without its
// length prefix). Front to back, stopping at the first problem:
//   header: 12 bytes (kTruncated); QR set (kNotResponse); opcode QUERY
//     (kOpcode); TC clear (kTc); QDCOUNT 1 (kQdcount);
//   question: its name (ReadDnsName's reasons), then type and class
//     readable; class IN (kQclass); type A or AAAA (kQtype);
//   an rcode other than NOERROR: the answer, with no records read;
//   ANCOUNT <= kDnsMaxAnswers (kTooManyAnswers);
//   each answer record: owner name; type, class, TTL, RDLENGTH and RDATA
//     readable; class IN (kRecordClass); a CNAME's RDATA exactly one name,
//     an A's 4 bytes, an AAAA's 16 (kRdlength); other types are skipped.
// A record counts when its owner is the chain's current name: the
// question's, then the target of the last CNAME that counted. Records are
// taken in message order, as resolvers write them (and as glibc reads
// them). Authority and additional sections are never read. Readable means
// inside the message and its first kDnsMaxView bytes (else kTooLong).
DnsOutcome ParseDnsAnswer(absl::Span<const uint8_t> message);

// The reason of an outcome: kOk for an answer.
DnsReason ReasonOf(const DnsOutcome& outcome);

}  // namespace egress::dns

#endif  // EGRESS_USERSPACE_DNS_DNS_ANSWER_H_
