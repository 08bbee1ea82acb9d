// A DNS message as the parser sees it: its bytes, of which only the first
// EGRESS_DNS_MAX_VIEW may be read (the kernel copies no more). Reads are
// checked first with Readable(), which also says why a range is not.
#ifndef EGRESS_USERSPACE_DNS_DNS_MESSAGE_H_
#define EGRESS_USERSPACE_DNS_DNS_MESSAGE_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "userspace/dns/dns_reason.h"

namespace egress::dns {

inline constexpr size_t kDnsMaxView = EGRESS_DNS_MAX_VIEW;

class DnsMessage {
 public:
  // `bytes` must outlive the DnsMessage.
  explicit DnsMessage(absl::Span<const uint8_t> bytes) : bytes_(bytes) {}

  // kOk when bytes [offset, offset + n) lie in the view. Otherwise
  // kTruncated when they run past the message's end, kTooLong when only
  // past the view of a longer message.
  DnsReason Readable(size_t offset, size_t n) const;

  // Big-endian reads of bytes Readable() has accepted.
  uint8_t U8(size_t offset) const { return bytes_[offset]; }
  uint16_t U16(size_t offset) const;
  uint32_t U32(size_t offset) const;

 private:
  absl::Span<const uint8_t> bytes_;
};

}  // namespace egress::dns

#endif  // EGRESS_USERSPACE_DNS_DNS_MESSAGE_H_
