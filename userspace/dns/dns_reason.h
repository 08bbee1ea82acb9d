// Why a DNS message yields no answer: one reason per message, the first
// problem met reading it front to back. The values are the kernel's
// (EGRESS_DNS_* in egress/dns_abi.h), so a reason read from a BPF outcome
// and one from the reference parser compare directly.
#ifndef EGRESS_USERSPACE_DNS_DNS_REASON_H_
#define EGRESS_USERSPACE_DNS_DNS_REASON_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "egress/dns_abi.h"

namespace egress::dns {

enum class DnsReason : uint8_t {
  kOk = EGRESS_DNS_OK,                // a typed answer
  kTruncated = EGRESS_DNS_TRUNCATED,  // a field runs past the end
  kTooLong = EGRESS_DNS_TOO_LONG,     // ... past the parser's view
  kNotResponse = EGRESS_DNS_NOT_RESPONSE,
  kOpcode = EGRESS_DNS_OPCODE,    // not a standard query
  kTc = EGRESS_DNS_TC,            // truncated by the server
  kQdcount = EGRESS_DNS_QDCOUNT,  // not exactly one question
  kLabelTooLong = EGRESS_DNS_LABEL_TOO_LONG,
  kNameTooLong = EGRESS_DNS_NAME_TOO_LONG,
  kNameChar = EGRESS_DNS_NAME_CHAR,
  kPointerForward = EGRESS_DNS_POINTER_FORWARD,
  kPointerLoop = EGRESS_DNS_POINTER_LOOP,
  kTooManyPointers = EGRESS_DNS_TOO_MANY_POINTERS,
  kQclass = EGRESS_DNS_QCLASS,
  kQtype = EGRESS_DNS_QTYPE,
  kTooManyAnswers = EGRESS_DNS_TOO_MANY_ANSWERS,
  kRecordClass = EGRESS_DNS_RECORD_CLASS,
  kRdlength = EGRESS_DNS_RDLENGTH,
};

inline constexpr int kDnsReasonCount = EGRESS_DNS_REASON_COUNT;

// A stable lower-case word for logs, counters and test output, e.g.
// "truncated", "pointer_loop"; "unknown" for a value outside the enum.
absl::string_view DnsReasonName(DnsReason reason);

}  // namespace egress::dns

#endif  // EGRESS_USERSPACE_DNS_DNS_REASON_H_
