#include "userspace/dns/dns_message.h"

#include <algorithm>

namespace egress::dns {

DnsReason DnsMessage::Readable(size_t offset, size_t n) const {
  const size_t end = offset + n;
  if (end <= std::min(bytes_.size(), kDnsMaxView)) return DnsReason::kOk;
  return end > bytes_.size() ? DnsReason::kTruncated : DnsReason::kTooLong;
}

uint16_t DnsMessage::U16(size_t offset) const {
  return static_cast<uint16_t>(U8(offset) << 8 | U8(offset + 1));
}

uint32_t DnsMessage::U32(size_t offset) const {
  return static_cast<uint32_t>(U16(offset)) << 16 | U16(offset + 2);
}

}  // namespace egress::dns
