#include "tests/testing/dns_outcome_diff.h"

#include <algorithm>
#include <cstring>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace egress {
namespace testing {
namespace {

using dns::DnsReason;
using dns::DnsReasonName;

void CopyName(char (&to)[EGRESS_DNS_NAME_BYTES], const std::string& from) {
  std::memset(to, 0, sizeof(to));
  std::memcpy(to, from.data(), std::min(from.size(), sizeof(to) - 1));
}

std::string Address(const egress_dns_addr& a) {
  return absl::StrFormat("%s ttl %u",
                         Hex(std::vector<uint8_t>(a.addr, a.addr + 16)), a.ttl);
}

template <typename T>
void Field(std::string& diff, const char* name, const T& want, const T& got) {
  if (want == got) return;
  absl::StrAppend(&diff, name, ": want ", want, ", got ", got, "\n");
}

}  // namespace

egress_dns_outcome KernelForm(const dns::DnsOutcome& outcome) {
  egress_dns_outcome k{};
  k.reason = static_cast<uint8_t>(dns::ReasonOf(outcome));
  const auto* a = std::get_if<dns::DnsAnswer>(&outcome);
  if (a == nullptr) return k;
  k.rcode = a->rcode;
  k.naddrs = static_cast<uint8_t>(a->addresses.size());
  k.ncnames = static_cast<uint8_t>(a->cnames.size());
  k.id = a->id;
  k.flags = a->flags;
  k.qtype = static_cast<uint16_t>(a->qtype);
  CopyName(k.qname, a->qname);
  CopyName(k.cname, a->cnames.empty() ? "" : a->cnames.back());
  for (size_t i = 0; i < a->addresses.size() && i < EGRESS_DNS_MAX_ANSWERS;
       ++i) {
    const dns::DnsAddress& from = a->addresses[i];
    std::memcpy(k.addrs[i].addr, from.bytes.data(),
                std::min<size_t>(from.bytes.size(), 16));
    k.addrs[i].ttl = from.ttl;
  }
  return k;
}

std::string DiffDnsOutcomes(const egress_dns_outcome& want,
                            const egress_dns_outcome& got) {
  std::string diff;
  Field(diff, "reason", DnsReasonName(static_cast<DnsReason>(want.reason)),
        DnsReasonName(static_cast<DnsReason>(got.reason)));
  if (!diff.empty() || want.reason != EGRESS_DNS_OK) return diff;
  Field(diff, "id", want.id, got.id);
  Field(diff, "flags", want.flags, got.flags);
  Field(diff, "rcode", +want.rcode, +got.rcode);
  Field(diff, "qtype", want.qtype, got.qtype);
  Field(diff, "qname", std::string(want.qname), std::string(got.qname));
  Field(diff, "cname", std::string(want.cname), std::string(got.cname));
  Field(diff, "ncnames", +want.ncnames, +got.ncnames);
  Field(diff, "naddrs", +want.naddrs, +got.naddrs);
  for (int i = 0; i < want.naddrs && i < got.naddrs; ++i) {
    Field(diff, "address", Address(want.addrs[i]), Address(got.addrs[i]));
  }
  return diff;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  return absl::StrJoin(bytes, " ", [](std::string* out, uint8_t b) {
    absl::StrAppendFormat(out, "%02x", b);
  });
}

}  // namespace testing
}  // namespace egress
