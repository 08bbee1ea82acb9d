#include "userspace/dns/dns_name_reader.h"

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

namespace egress::dns {
namespace {

// The label's characters as a name holds them, or nullopt when one is not a
// letter, digit, '-' or '_'.
std::optional<std::string> FoldLabel(const DnsMessage& message, size_t offset,
                                     size_t length) {
  std::string label;
  for (size_t i = 0; i < length; ++i) {
    const unsigned char c = message.U8(offset + i);
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return std::nullopt;
    label.push_back(static_cast<char>(absl::ascii_tolower(c)));
  }
  return label;
}

DnsNameRead Failed(DnsReason reason) { return DnsNameRead{.reason = reason}; }

}  // namespace

DnsNameRead ReadDnsName(const DnsMessage& message, size_t offset) {
  std::vector<std::string> labels;
  size_t wire = 0;      // octets of the labels read, length octets included
  size_t pos = offset;  // the next length octet
  size_t run = offset;  // where the current run of labels starts
  std::optional<size_t> end;
  int pointers = 0;
  while (true) {
    if (DnsReason r = message.Readable(pos, 1); r != DnsReason::kOk) {
      return Failed(r);
    }
    const uint8_t length = message.U8(pos);
    if ((length & 0xc0) == 0xc0) {
      if (DnsReason r = message.Readable(pos, 2); r != DnsReason::kOk) {
        return Failed(r);
      }
      const size_t target = message.U16(pos) & 0x3fff;
      if (target >= pos) return Failed(DnsReason::kPointerForward);
      if (target >= run) return Failed(DnsReason::kPointerLoop);
      if (++pointers > kDnsMaxPointers) {
        return Failed(DnsReason::kTooManyPointers);
      }
      if (!end) end = pos + 2;
      pos = run = target;
      continue;
    }
    if (length > 63) return Failed(DnsReason::kLabelTooLong);
    if (length == 0) {
      return DnsNameRead{.name = absl::StrJoin(labels, "."),
                         .end = end.value_or(pos + 1)};
    }
    if (wire + length + 2 > kDnsMaxWireName) {
      return Failed(DnsReason::kNameTooLong);
    }
    if (DnsReason r = message.Readable(pos + 1, length); r != DnsReason::kOk) {
      return Failed(r);
    }
    std::optional<std::string> label = FoldLabel(message, pos + 1, length);
    if (!label) return Failed(DnsReason::kNameChar);
    labels.push_back(*std::move(label));
    wire += length + 1;
    pos += length + 1;
  }
}

}  // namespace egress::dns
