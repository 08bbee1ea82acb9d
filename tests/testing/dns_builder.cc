#include "tests/testing/dns_builder.h"

#include <arpa/inet.h>

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace egress {
namespace testing {
namespace {

std::vector<uint8_t> AddressBytes(int family, absl::string_view text) {
  uint8_t bytes[16] = {};
  const std::string s(text);
  const int ok = inet_pton(family, s.c_str(), bytes);
  const size_t n = family == AF_INET ? 4 : 16;
  return ok == 1 ? std::vector<uint8_t>(bytes, bytes + n)
                 : std::vector<uint8_t>(n, 0);
}

std::vector<uint8_t> Pointer(size_t to) {
  return {static_cast<uint8_t>(0xc0 | to >> 8),
          static_cast<uint8_t>(to & 0xff)};
}

// Appends fields and names, compressing a name's suffix against the
// suffixes written before it, as servers do.
class Writer {
 public:
  Writer(bool compress, DnsLayout* layout)
      : compress_(compress), layout_(layout) {}

  void U8(uint8_t v) { bytes_.push_back(v); }
  void U16(uint16_t v) {
    U8(v >> 8);
    U8(v & 0xff);
  }
  void U32(uint32_t v) {
    U16(v >> 16);
    U16(v & 0xffff);
  }
  void Bytes(const std::vector<uint8_t>& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
  }
  void SetU16(size_t at, uint16_t v) {
    bytes_[at] = v >> 8;
    bytes_[at + 1] = v & 0xff;
  }
  size_t size() const { return bytes_.size(); }
  DnsLayout& layout() { return *layout_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

  void Name(const std::vector<std::string>& labels) {
    for (size_t i = 0; i < labels.size(); ++i) {
      const std::string suffix = absl::AsciiStrToLower(absl::StrJoin(
          labels.begin() + static_cast<std::ptrdiff_t>(i), labels.end(), "."));
      if (auto it = suffixes_.find(suffix);
          compress_ && it != suffixes_.end()) {
        layout_->pointers.push_back(size());
        U16(static_cast<uint16_t>(0xc000 | it->second));
        return;
      }
      if (size() < 0x4000) suffixes_.emplace(suffix, size());
      layout_->label_lengths.push_back(size());
      U8(static_cast<uint8_t>(labels[i].size()));
      Bytes(std::vector<uint8_t>(labels[i].begin(), labels[i].end()));
    }
    U8(0);
  }

  void Record(const DnsTestRecord& r) {
    Name(r.owner);
    layout_->record_types.push_back(size());
    U16(r.type);
    U16(r.klass);
    U32(r.ttl);
    const size_t rdlength_at = size();
    layout_->rdlengths.push_back(rdlength_at);
    U16(0);
    Bytes(r.rdata);
    if (r.rdata_is_name) Name(r.rdata_name);
    SetU16(rdlength_at, static_cast<uint16_t>(size() - rdlength_at - 2));
  }

 private:
  bool compress_;
  DnsLayout* layout_;
  std::vector<uint8_t> bytes_;
  std::map<std::string, size_t> suffixes_;
};

}  // namespace

std::vector<std::string> DnsLabels(absl::string_view name) {
  if (name.empty()) return {};
  return absl::StrSplit(name, '.');
}

DnsTestRecord DnsA(absl::string_view owner, absl::string_view ipv4,
                   uint32_t ttl) {
  DnsTestRecord r = DnsRaw(owner, 1, AddressBytes(AF_INET, ipv4));
  r.ttl = ttl;
  return r;
}

DnsTestRecord DnsAaaa(absl::string_view owner, absl::string_view ipv6,
                      uint32_t ttl) {
  DnsTestRecord r = DnsRaw(owner, 28, AddressBytes(AF_INET6, ipv6));
  r.ttl = ttl;
  return r;
}

DnsTestRecord DnsCname(absl::string_view owner, absl::string_view target,
                       uint32_t ttl) {
  return DnsTestRecord{.owner = DnsLabels(owner),
                       .type = 5,
                       .ttl = ttl,
                       .rdata_name = DnsLabels(target),
                       .rdata_is_name = true};
}

DnsTestRecord DnsRaw(absl::string_view owner, uint16_t type,
                     std::vector<uint8_t> rdata) {
  return DnsTestRecord{
      .owner = DnsLabels(owner), .type = type, .rdata = std::move(rdata)};
}

DnsMessageBuilder& DnsMessageBuilder::Id(uint16_t id) {
  id_ = id;
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Flags(uint16_t flags) {
  flags_ = flags;
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Question(absl::string_view name,
                                               uint16_t qtype,
                                               uint16_t qclass) {
  return QuestionLabels(DnsLabels(name), qtype, qclass);
}

DnsMessageBuilder& DnsMessageBuilder::QuestionLabels(
    std::vector<std::string> labels, uint16_t qtype, uint16_t qclass) {
  questions_.push_back({std::move(labels), qtype, qclass});
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Answer(DnsTestRecord record) {
  sections_[0].push_back(std::move(record));
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Authority(DnsTestRecord record) {
  sections_[1].push_back(std::move(record));
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Additional(DnsTestRecord record) {
  sections_[2].push_back(std::move(record));
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Compress(bool on) {
  compress_ = on;
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Counts(int qd, int an, int ns, int ar) {
  counts_[0] = qd;
  counts_[1] = an;
  counts_[2] = ns;
  counts_[3] = ar;
  return *this;
}

DnsMessageBuilder& DnsMessageBuilder::Trailer(std::vector<uint8_t> bytes) {
  trailer_ = std::move(bytes);
  return *this;
}

std::vector<uint8_t> DnsMessageBuilder::Build(DnsLayout* layout) const {
  DnsLayout scratch;
  if (layout == nullptr) layout = &scratch;
  *layout = DnsLayout{};
  Writer w(compress_, layout);
  const size_t true_counts[4] = {questions_.size(), sections_[0].size(),
                                 sections_[1].size(), sections_[2].size()};
  w.U16(id_);
  w.U16(flags_);
  for (int i = 0; i < 4; ++i) {
    w.U16(static_cast<uint16_t>(counts_[i] >= 0 ? counts_[i] : true_counts[i]));
  }
  for (const QuestionPart& q : questions_) {
    w.Name(q.labels);
    w.U16(q.qtype);
    w.U16(q.qclass);
  }
  layout->question_end = w.size();
  for (const auto& section : sections_) {
    for (const DnsTestRecord& r : section) w.Record(r);
  }
  w.Bytes(trailer_);
  return w.Take();
}

std::vector<uint8_t> DnsPointerChain(int n) {
  constexpr uint16_t kPrivate = 65280;
  DnsMessageBuilder b;
  b.Question("a");
  DnsLayout layout;
  b.Answer(DnsRaw("a", kPrivate, {})).Build(&layout);
  const size_t rdata = layout.rdlengths[0] + 2;
  std::vector<uint8_t> chain = Pointer(12);
  for (int i = 1; i < n; ++i) {
    const std::vector<uint8_t> p = Pointer(rdata + 2 * (i - 1));
    chain.insert(chain.end(), p.begin(), p.end());
  }
  std::vector<uint8_t> second = Pointer(rdata + 2 * (n - 1));
  // A, IN, TTL 60, RDLENGTH 4, 192.0.2.1
  const std::vector<uint8_t> fields = {0,  1, 0, 1,   0, 0, 0,
                                       60, 0, 4, 192, 0, 2, 1};
  second.insert(second.end(), fields.begin(), fields.end());
  DnsMessageBuilder message;
  return message.Question("a")
      .Answer(DnsRaw("a", kPrivate, std::move(chain)))
      .Counts(-1, 2, -1, -1)
      .Trailer(std::move(second))
      .Build();
}

}  // namespace testing
}  // namespace egress
