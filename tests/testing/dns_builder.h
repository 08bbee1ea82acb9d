// Builds DNS messages for tests, byte for byte as a server would (counts
// follow the records, names compressed against earlier ones), with knobs to
// break them, and a map of where each part was written so that a mutation
// can aim at a structure (a label length, a pointer, a count).
#ifndef EGRESS_TESTS_TESTING_DNS_BUILDER_H_
#define EGRESS_TESTS_TESTING_DNS_BUILDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace egress {
namespace testing {

// One resource record. A name is its labels; text names split at '.'.
struct DnsTestRecord {
  std::vector<std::string> owner;
  uint16_t type = 1;
  uint16_t klass = 1;
  uint32_t ttl = 300;
  std::vector<uint8_t> rdata;           // written as is ...
  std::vector<std::string> rdata_name;  // ... then this name, if non-empty
  bool rdata_is_name = false;           // the root is a name too
};

std::vector<std::string> DnsLabels(absl::string_view name);  // "" = root
DnsTestRecord DnsA(absl::string_view owner, absl::string_view ipv4,
                   uint32_t ttl = 300);
DnsTestRecord DnsAaaa(absl::string_view owner, absl::string_view ipv6,
                      uint32_t ttl = 300);
DnsTestRecord DnsCname(absl::string_view owner, absl::string_view target,
                       uint32_t ttl = 300);
DnsTestRecord DnsRaw(absl::string_view owner, uint16_t type,
                     std::vector<uint8_t> rdata);

// Offsets in the last message built.
struct DnsLayout {
  std::vector<size_t> label_lengths;  // length octets of labels
  std::vector<size_t> pointers;       // first octets of pointers
  std::vector<size_t> rdlengths;      // RDLENGTH fields
  std::vector<size_t> record_types;   // TYPE fields of records
  size_t question_end = 0;            // after QTYPE and QCLASS
};

class DnsMessageBuilder {
 public:
  DnsMessageBuilder& Id(uint16_t id);
  // Default 0x8180: a response, recursion desired and available, NOERROR.
  DnsMessageBuilder& Flags(uint16_t flags);
  DnsMessageBuilder& Question(absl::string_view name, uint16_t qtype = 1,
                              uint16_t qclass = 1);
  DnsMessageBuilder& QuestionLabels(std::vector<std::string> labels,
                                    uint16_t qtype = 1, uint16_t qclass = 1);
  DnsMessageBuilder& Answer(DnsTestRecord record);
  DnsMessageBuilder& Authority(DnsTestRecord record);
  DnsMessageBuilder& Additional(DnsTestRecord record);
  // Off: every name written in full.
  DnsMessageBuilder& Compress(bool on);
  // Header counts written instead of the true ones (-1 keeps a true one).
  DnsMessageBuilder& Counts(int qd, int an, int ns, int ar);
  // Bytes appended after the last section.
  DnsMessageBuilder& Trailer(std::vector<uint8_t> bytes);

  std::vector<uint8_t> Build(DnsLayout* layout = nullptr) const;

 private:
  struct QuestionPart {
    std::vector<std::string> labels;
    uint16_t qtype;
    uint16_t qclass;
  };
  uint16_t id_ = 0x1234;
  uint16_t flags_ = 0x8180;
  std::vector<QuestionPart> questions_;
  std::vector<DnsTestRecord> sections_[3];
  bool compress_ = true;
  int counts_[4] = {-1, -1, -1, -1};
  std::vector<uint8_t> trailer_;
};

// "a" asked, two answers: the first of a private type whose RDATA holds
// `n` pointers, the first to the question's name and each other to the one
// before it; the second an A record (192.0.2.1) whose owner is a pointer to
// the last of them. Reading that owner follows n + 1 pointers.
std::vector<uint8_t> DnsPointerChain(int n);

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_DNS_BUILDER_H_
