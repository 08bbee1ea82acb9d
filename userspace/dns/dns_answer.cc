#include "userspace/dns/dns_answer.h"

#include <utility>

#include "userspace/dns/dns_message.h"
#include "userspace/dns/dns_name_reader.h"

namespace egress::dns {
namespace {

constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagOpcode = 0x7800;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRcode = 0x000f;
constexpr size_t kHeaderBytes = EGRESS_DNS_HEADER_BYTES;

// The parse so far: the answer being built and the next record's offset.
struct Parse {
  explicit Parse(absl::Span<const uint8_t> bytes) : message(bytes) {}

  // The name records must be owned by to count.
  const std::string& Current() const {
    return answer.cnames.empty() ? answer.qname : answer.cnames.back();
  }

  DnsMessage message;
  DnsAnswer answer;
  size_t pos = kHeaderBytes;
};

// The fixed part of a resource record, after its owner name.
struct RecordFields {
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t rdata = 0;
  size_t rdlength = 0;
};

DnsReason ParseHeader(Parse& p) {
  const DnsMessage& m = p.message;
  if (DnsReason r = m.Readable(0, kHeaderBytes); r != DnsReason::kOk) return r;
  const uint16_t flags = m.U16(2);
  p.answer.id = m.U16(0);
  p.answer.flags = flags;
  p.answer.rcode = flags & kFlagRcode;
  if (!(flags & kFlagQr)) return DnsReason::kNotResponse;
  if (flags & kFlagOpcode) return DnsReason::kOpcode;
  if (flags & kFlagTc) return DnsReason::kTc;
  if (m.U16(4) != 1) return DnsReason::kQdcount;
  return DnsReason::kOk;
}

DnsReason ParseQuestion(Parse& p) {
  DnsNameRead name = ReadDnsName(p.message, kHeaderBytes);
  if (name.reason != DnsReason::kOk) return name.reason;
  p.answer.qname = std::move(name.name);
  if (DnsReason r = p.message.Readable(name.end, 4); r != DnsReason::kOk) {
    return r;
  }
  const uint16_t qtype = p.message.U16(name.end);
  if (p.message.U16(name.end + 2) != EGRESS_DNS_CLASS_IN) {
    return DnsReason::kQclass;
  }
  if (qtype != EGRESS_DNS_TYPE_A && qtype != EGRESS_DNS_TYPE_AAAA) {
    return DnsReason::kQtype;
  }
  p.answer.qtype = static_cast<DnsType>(qtype);
  p.pos = name.end + 4;
  return DnsReason::kOk;
}

// What a record of a known type adds, once its fields are known readable.
DnsReason TakeRecordData(Parse& p, const RecordFields& f, bool counts) {
  if (f.type == EGRESS_DNS_TYPE_CNAME) {
    DnsNameRead target = ReadDnsName(p.message, f.rdata);
    if (target.reason != DnsReason::kOk) return target.reason;
    if (target.end != f.rdata + f.rdlength) return DnsReason::kRdlength;
    if (counts) p.answer.cnames.push_back(std::move(target.name));
    return DnsReason::kOk;
  }
  if (f.type != EGRESS_DNS_TYPE_A && f.type != EGRESS_DNS_TYPE_AAAA) {
    return DnsReason::kOk;  // another type: skipped
  }
  if (f.rdlength != (f.type == EGRESS_DNS_TYPE_A ? 4u : 16u)) {
    return DnsReason::kRdlength;
  }
  if (counts && f.type == static_cast<uint16_t>(p.answer.qtype)) {
    DnsAddress address{.ttl = f.ttl > 0x7fffffff ? 0 : f.ttl};
    for (size_t i = 0; i < f.rdlength; ++i) {
      address.bytes.push_back(p.message.U8(f.rdata + i));
    }
    p.answer.addresses.push_back(std::move(address));
  }
  return DnsReason::kOk;
}

DnsReason ParseRecord(Parse& p) {
  const DnsMessage& m = p.message;
  DnsNameRead owner = ReadDnsName(m, p.pos);
  if (owner.reason != DnsReason::kOk) return owner.reason;
  const bool counts = owner.name == p.Current();
  if (DnsReason r = m.Readable(owner.end, 10); r != DnsReason::kOk) return r;
  const RecordFields f{.type = m.U16(owner.end),
                       .klass = m.U16(owner.end + 2),
                       .ttl = m.U32(owner.end + 4),
                       .rdata = owner.end + 10,
                       .rdlength = m.U16(owner.end + 8)};
  if (DnsReason r = m.Readable(f.rdata, f.rdlength); r != DnsReason::kOk) {
    return r;
  }
  if (f.klass != EGRESS_DNS_CLASS_IN) return DnsReason::kRecordClass;
  p.pos = f.rdata + f.rdlength;
  return TakeRecordData(p, f, counts);
}

}  // namespace

DnsOutcome ParseDnsAnswer(absl::Span<const uint8_t> message) {
  Parse p(message);
  for (DnsReason (*step)(Parse&) : {ParseHeader, ParseQuestion}) {
    if (DnsReason r = step(p); r != DnsReason::kOk) return r;
  }
  if (p.answer.rcode != 0) return std::move(p.answer);
  const uint16_t ancount = p.message.U16(6);
  if (ancount > kDnsMaxAnswers) return DnsReason::kTooManyAnswers;
  for (uint16_t i = 0; i < ancount; ++i) {
    if (DnsReason r = ParseRecord(p); r != DnsReason::kOk) return r;
  }
  return std::move(p.answer);
}

DnsReason ReasonOf(const DnsOutcome& outcome) {
  if (const auto* reason = std::get_if<DnsReason>(&outcome)) return *reason;
  return DnsReason::kOk;
}

}  // namespace egress::dns
