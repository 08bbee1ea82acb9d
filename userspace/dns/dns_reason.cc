#include "userspace/dns/dns_reason.h"

#include <array>

namespace egress::dns {
namespace {

constexpr std::array<absl::string_view, kDnsReasonCount> kNames = {
    "ok",
    "truncated",
    "too_long",
    "not_response",
    "opcode",
    "tc",
    "qdcount",
    "label_too_long",
    "name_too_long",
    "name_char",
    "pointer_forward",
    "pointer_loop",
    "too_many_pointers",
    "qclass",
    "qtype",
    "too_many_answers",
    "record_class",
    "rdlength",
};

}  // namespace

absl::string_view DnsReasonName(DnsReason reason) {
  const auto index = static_cast<size_t>(reason);
  return index < kNames.size() ? kNames[index] : "unknown";
}

}  // namespace egress::dns
