#include "tests/testing/dns_fuzz.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace egress {
namespace testing {
namespace {

constexpr uint16_t kA = 1, kCname = 5, kAaaa = 28;
constexpr char kAlphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
// Labels that recur, so that names share suffixes (compression) and the
// chain's names meet other records' owners.
constexpr const char* kCommon[] = {"www",  "api",     "a",   "b",
                                   "cdn",  "example", "com", "net",
                                   "edge", "x-1",     "_svc"};
// Types seen in answer sections besides A, AAAA and CNAME: DNAME, RRSIG,
// TXT, MX, and one nobody knows.
constexpr uint16_t kOtherTypes[] = {39, 46, 16, 15, 65280};
constexpr uint8_t kLabelLengths[] = {0, 1, 2, 62, 63, 64, 0x7f, 0x80, 0xbf};
constexpr uint16_t kCounts[] = {0, 1, 2, 3, 31, 32, 33, 0xffff};
constexpr uint16_t kRdlengths[] = {0, 1, 3, 4, 5, 15, 16, 17, 0xffff};
constexpr uint16_t kTypes[] = {kA, kCname, kAaaa, 46, 0};

template <typename T, size_t N>
T Choose(DnsFuzzer& f, const T (&choices)[N]) {
  return choices[f.Below(N)];
}

void PutU16(std::vector<uint8_t>& m, size_t at, uint16_t v) {
  if (at + 1 >= m.size()) return;
  m[at] = v >> 8;
  m[at + 1] = v & 0xff;
}

}  // namespace

uint64_t DnsFuzzer::Below(uint64_t n) {
  // splitmix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) % n;
}

std::string DnsFuzzer::RandomLabel() {
  if (!OneIn(4)) return kCommon[Below(std::size(kCommon))];
  const size_t n = OneIn(8) ? 60 + Below(4) : 1 + Below(12);
  std::string label;
  for (size_t i = 0; i < n; ++i)
    label += kAlphabet[Below(sizeof(kAlphabet) - 1)];
  // Now and then a character no name may hold.
  if (OneIn(60))
    label[Below(n)] = OneIn(2) ? ' ' : static_cast<char>(0x80 + Below(128));
  return label;
}

// A name whose wire form is a few octets either side of the 255 limit.
std::string DnsFuzzer::LongName() {
  size_t left = 248 + Below(14);  // wire octets, root included
  std::string name;
  while (left > 2) {
    const size_t n = std::min<size_t>(63, left - 2);
    absl::StrAppend(&name, name.empty() ? "" : ".", std::string(n, 'z'));
    left -= n + 1;
  }
  return name;
}

std::string DnsFuzzer::RandomName() {
  if (OneIn(20)) return LongName();
  std::string name = RandomLabel();
  const size_t labels = OneIn(10) ? 4 + Below(3) : Below(4);
  for (size_t i = 0; i < labels; ++i)
    absl::StrAppend(&name, ".", RandomLabel());
  return name;
}

std::string DnsFuzzer::Recase(const std::string& name) {
  if (!OneIn(4)) return name;
  std::string out = name;
  for (char& c : out) {
    if (OneIn(2)) c = absl::ascii_toupper(static_cast<unsigned char>(c));
  }
  return out;
}

std::vector<uint8_t> DnsFuzzer::RandomBytes(size_t n) {
  std::vector<uint8_t> bytes(n);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(Below(256));
  return bytes;
}

DnsTestRecord DnsFuzzer::Address(const std::string& owner, uint16_t type) {
  DnsTestRecord r =
      DnsRaw(Recase(owner), type, RandomBytes(type == kA ? 4 : 16));
  r.ttl = OneIn(10) ? 0x80000000u | static_cast<uint32_t>(Below(1 << 30))
                    : static_cast<uint32_t>(Below(86400));
  return r;
}

// The CNAME chain from the question and the addresses at its end, now and
// then out of order or with an address owned mid-chain.
void DnsFuzzer::AddChain(DnsMessageBuilder& b, const std::string& qname,
                         uint16_t qtype) {
  std::vector<DnsTestRecord> records;
  std::string current = qname;
  for (uint64_t i = Below(5); i > 0; --i) {
    const std::string next =
        OneIn(3) ? RandomName() : absl::StrCat(RandomLabel(), ".", qname);
    records.push_back(DnsCname(Recase(current), next, Below(3600)));
    if (OneIn(8)) records.push_back(Address(current, qtype));
    current = next;
  }
  const uint64_t addresses = OneIn(12) ? 28 + Below(8) : Below(7);
  for (uint64_t i = 0; i < addresses; ++i) {
    records.push_back(Address(current, OneIn(10) ? kA + kAaaa - qtype : qtype));
  }
  if (OneIn(10) && records.size() > 1) {
    std::swap(records[Below(records.size())], records[Below(records.size())]);
  }
  for (DnsTestRecord& r : records) b.Answer(std::move(r));
}

// Records that do not count, and sections the parser never reads.
void DnsFuzzer::AddExtras(DnsMessageBuilder& b, const std::string& qname) {
  if (OneIn(5)) {
    b.Answer(DnsRaw(OneIn(2) ? qname : RandomName(), Choose(*this, kOtherTypes),
                    RandomBytes(Below(40))));
  }
  if (OneIn(6)) b.Answer(Address(RandomName(), OneIn(2) ? kA : kAaaa));
  if (OneIn(30)) b.Answer(DnsRaw(qname, 65280, RandomBytes(1900 + Below(400))));
  if (OneIn(4)) b.Authority(DnsRaw(RandomName(), 6, RandomBytes(Below(60))));
  if (OneIn(3)) {
    DnsTestRecord opt = DnsRaw("", 41, {});
    opt.klass = 1232;
    b.Additional(std::move(opt));
  }
  if (OneIn(12))
    b.Additional(DnsRaw("", 65280, RandomBytes(2000 + Below(1200))));
}

std::vector<uint8_t> DnsFuzzer::RandomAnswer(DnsLayout* layout) {
  if (OneIn(60)) return DnsPointerChain(static_cast<int>(58 + Below(12)));
  const std::string qname = OneIn(40) ? "" : RandomName();
  uint16_t qtype = OneIn(2) ? kA : kAaaa;
  if (OneIn(25)) qtype = Choose(*this, kOtherTypes);
  DnsMessageBuilder b;
  b.Id(static_cast<uint16_t>(Below(65536)));
  b.Flags(OneIn(20) ? 0x8183 : 0x8180);
  if (OneIn(40)) b.Flags(static_cast<uint16_t>(Below(65536)));
  b.Question(Recase(qname), qtype, OneIn(50) ? 3 : 1);
  b.Compress(!OneIn(10));
  AddChain(b, qname, qtype == kAaaa ? kAaaa : kA);
  AddExtras(b, qname);
  std::vector<uint8_t> m = b.Build(layout);
  if (m.size() > kDnsFuzzMaxBytes) m.resize(kDnsFuzzMaxBytes);
  return m;
}

// Random bytes, half of them behind a header that passes the first checks.
std::vector<uint8_t> DnsFuzzer::RandomMessage() {
  std::vector<uint8_t> m = RandomBytes(Below(OneIn(10) ? 3000 : 300));
  if (m.size() >= 12 && OneIn(2)) {
    PutU16(m, 2, 0x8180);
    PutU16(m, 4, 1);
    PutU16(m, 6, static_cast<uint16_t>(Below(5)));
  }
  return m;
}

size_t DnsFuzzer::Pick(const std::vector<size_t>& offsets) {
  return offsets.empty() ? 0 : offsets[Below(offsets.size())];
}

void DnsFuzzer::MutateStructure(std::vector<uint8_t>& m,
                                const DnsLayout& layout) {
  switch (Below(6)) {
    case 0: {  // a pointer sent anywhere, at or after itself, just before
      const size_t at = Pick(layout.pointers);
      size_t to = OneIn(2) ? Below(m.size() + 16) : at + Below(3);
      if (OneIn(3)) to = at - std::min(at, 1 + Below(12));
      if (at) PutU16(m, at, static_cast<uint16_t>(0xc000 | (to & 0x3fff)));
      break;
    }
    case 1:
      PutU16(m, 4 + 2 * Below(4), Choose(*this, kCounts));
      break;
    case 2: {
      const size_t at = Pick(layout.label_lengths);
      if (at && at < m.size()) {
        m[at] = OneIn(3) ? static_cast<uint8_t>(m[at] + Below(3) - 1)
                         : Choose(*this, kLabelLengths);
      }
      break;
    }
    case 3:
      PutU16(m, Pick(layout.rdlengths), Choose(*this, kRdlengths));
      break;
    case 4:
      if (m.size() > 3) m[2 + Below(2)] ^= static_cast<uint8_t>(1u << Below(8));
      break;
    default:
      PutU16(m, Pick(layout.record_types), Choose(*this, kTypes));
  }
}

void DnsFuzzer::MutateBytes(std::vector<uint8_t>& m) {
  if (m.empty()) return;
  const size_t at = Below(m.size());
  switch (Below(5)) {
    case 0:
      m[at] ^= static_cast<uint8_t>(1u << Below(8));
      break;
    case 1:
      m[at] = static_cast<uint8_t>(Below(256));
      break;
    case 2:
      m.resize(Below(m.size()));
      break;
    case 3: {
      const std::vector<uint8_t> bytes = RandomBytes(1 + Below(4));
      m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(),
               bytes.end());
      break;
    }
    default:
      m.erase(m.begin() + static_cast<std::ptrdiff_t>(at),
              m.begin() + static_cast<std::ptrdiff_t>(
                              std::min(m.size(), at + 1 + Below(4))));
  }
}

void DnsFuzzer::Mutate(std::vector<uint8_t>& m, const DnsLayout& layout) {
  for (uint64_t i = 1 + Below(3); i > 0; --i) {
    if (OneIn(2)) {
      MutateStructure(m, layout);
    } else {
      MutateBytes(m);
    }
  }
  if (m.size() > kDnsFuzzMaxBytes) m.resize(kDnsFuzzMaxBytes);
}

std::vector<uint8_t> DnsFuzzer::Next() {
  const uint64_t kind = Below(100);
  if (kind < 10) return RandomMessage();
  DnsLayout layout;
  std::vector<uint8_t> m = RandomAnswer(&layout);
  if (kind >= 35) Mutate(m, layout);
  return m;
}

}  // namespace testing
}  // namespace egress
