// A reproducible stream of DNS messages for differential tests of the
// parser: answers as servers write them (CNAME chains, both address types,
// records of other types and names, compression on and off, sizes around
// the parser's bounds), the same with structure-aware mutations (bit flips,
// truncation, pointer rewrites, count inflation, label length and RDLENGTH
// changes, inserted and deleted bytes), and random bytes. The same seed
// gives the same messages on any platform (own generator, no std
// distributions).
#ifndef EGRESS_TESTS_TESTING_DNS_FUZZ_H_
#define EGRESS_TESTS_TESTING_DNS_FUZZ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/testing/dns_builder.h"

namespace egress {
namespace testing {

// Messages never exceed this: what BPF_PROG_TEST_RUN takes with the
// Ethernet, IP and UDP headers in front, with room to spare.
inline constexpr size_t kDnsFuzzMaxBytes = 3400;

class DnsFuzzer {
 public:
  explicit DnsFuzzer(uint64_t seed) : state_(seed) {}

  std::vector<uint8_t> Next();

  // Uniform enough in [0, n); n > 0.
  uint64_t Below(uint64_t n);

 private:
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  std::string RandomLabel();
  std::string LongName();
  std::string RandomName();
  std::string Recase(const std::string& name);
  std::vector<uint8_t> RandomBytes(size_t n);
  DnsTestRecord Address(const std::string& owner, uint16_t type);
  void AddChain(DnsMessageBuilder& b, const std::string& qname, uint16_t qtype);
  void AddExtras(DnsMessageBuilder& b, const std::string& qname);
  std::vector<uint8_t> RandomAnswer(DnsLayout* layout);
  std::vector<uint8_t> RandomMessage();
  void Mutate(std::vector<uint8_t>& m, const DnsLayout& layout);
  void MutateStructure(std::vector<uint8_t>& m, const DnsLayout& layout);
  void MutateBytes(std::vector<uint8_t>& m);
  size_t Pick(const std::vector<size_t>& offsets);

  uint64_t state_;
};

}  // namespace testing
}  // namespace egress

#endif  // EGRESS_TESTS_TESTING_DNS_FUZZ_H_
