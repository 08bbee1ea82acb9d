#include "tests/testing/dns_cases.h"

#include <string>
#include <utility>

#include "tests/testing/dns_builder.h"

namespace egress {
namespace testing {
namespace {

using dns::DnsReason;

constexpr uint16_t kMx = 15;
constexpr uint16_t kTxt = 16;
constexpr uint16_t kPrivate = 65280;  // a type the parser does not know

DnsMessageBuilder Asking(absl::string_view name = "www.example.com",
                         uint16_t qtype = 1) {
  DnsMessageBuilder b;
  b.Question(name, qtype);
  return b;
}

std::vector<uint8_t> Set(std::vector<uint8_t> m, size_t at,
                         std::vector<uint8_t> bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) m.at(at + i) = bytes[i];
  return m;
}

std::vector<uint8_t> Cut(std::vector<uint8_t> m, size_t n) {
  m.resize(n);
  return m;
}

std::string Label(size_t n) { return std::string(n, 'x'); }

void HeaderCases(std::vector<DnsCase>& c) {
  const std::vector<uint8_t> plain = Asking().Build();
  c.push_back({"empty message", {}, DnsReason::kTruncated});
  c.push_back({"11 octets", Cut(plain, 11), DnsReason::kTruncated});
  c.push_back(
      {"a query", Asking().Flags(0x0100).Build(), DnsReason::kNotResponse});
  c.push_back(
      {"opcode STATUS", Asking().Flags(0x9180).Build(), DnsReason::kOpcode});
  c.push_back({"TC set", Asking().Flags(0x8380).Build(), DnsReason::kTc});
  c.push_back({"no question", Asking().Counts(0, -1, -1, -1).Build(),
               DnsReason::kQdcount});
  c.push_back({"two questions", Asking().Question("b.example.com").Build(),
               DnsReason::kQdcount});
  c.push_back({"question name cut", Cut(plain, 20), DnsReason::kTruncated});
  c.push_back({"question type cut", Cut(plain, 30), DnsReason::kTruncated});
  DnsMessageBuilder chaos;
  chaos.Question("www.example.com", 1, 3);
  c.push_back({"question class CH", chaos.Build(), DnsReason::kQclass});
  c.push_back({"question type MX", Asking("example.com", kMx).Build(),
               DnsReason::kQtype});
  c.push_back({"question type ANY", Asking("example.com", 255).Build(),
               DnsReason::kQtype});
  c.push_back({"NXDOMAIN: counts not read",
               Asking().Flags(0x8183).Counts(-1, 999, -1, -1).Build(),
               DnsReason::kOk});
  c.push_back({"root asked", Asking("").Build(), DnsReason::kOk});
}

void NameCases(std::vector<DnsCase>& c) {
  const std::vector<uint8_t> plain = Asking().Build();
  const std::string l63 = Label(63);
  c.push_back(
      {"63-character label", Asking(l63 + ".com").Build(), DnsReason::kOk});
  c.push_back({"64-character label", Asking(Label(64) + ".com").Build(),
               DnsReason::kLabelTooLong});
  c.push_back(
      {"label type 10", Set(plain, 12, {0x83}), DnsReason::kLabelTooLong});
  const std::string n253 = l63 + "." + l63 + "." + l63 + "." + Label(61);
  c.push_back({"name of 255 octets", Asking(n253).Build(), DnsReason::kOk});
  c.push_back({"name of 256 octets", Asking(n253 + "x").Build(),
               DnsReason::kNameTooLong});
  c.push_back({"space in a label", Asking("a b.example.com").Build(),
               DnsReason::kNameChar});
  DnsMessageBuilder dotted;
  dotted.QuestionLabels({"a.b", "com"});
  c.push_back({"dot inside a label", dotted.Build(), DnsReason::kNameChar});
  c.push_back(
      {"octet 0xff in a label", Set(plain, 13, {0xff}), DnsReason::kNameChar});
  c.push_back({"underscore and hyphen", Asking("_a-b.-x_.example").Build(),
               DnsReason::kOk});
  c.push_back({"pointer to itself", Set(plain, 12, {0xc0, 12}),
               DnsReason::kPointerForward});
  c.push_back({"pointer forward", Set(plain, 12, {0xc0, 40}),
               DnsReason::kPointerForward});
  c.push_back({"pointer past the end", Set(plain, 12, {0xff, 0xff}),
               DnsReason::kPointerForward});
  c.push_back({"pointer into its own name", Set(plain, 16, {0xc0, 12}),
               DnsReason::kPointerLoop});
  const std::vector<uint8_t> answered =
      Asking().Answer(DnsA("www.example.com", "192.0.2.1")).Build();
  c.push_back({"pointer cut", Cut(answered, 34), DnsReason::kTruncated});
  c.push_back({"64 pointers", DnsPointerChain(63), DnsReason::kOk});
  c.push_back(
      {"65 pointers", DnsPointerChain(64), DnsReason::kTooManyPointers});
}

void RecordCases(std::vector<DnsCase>& c) {
  const std::string q = "www.example.com";
  c.push_back({"A answer", Asking().Answer(DnsA(q, "192.0.2.1")).Build(),
               DnsReason::kOk});
  c.push_back({"AAAA answer",
               Asking(q, 28).Answer(DnsAaaa(q, "2001:db8::1")).Build(),
               DnsReason::kOk});
  DnsTestRecord chaos = DnsA(q, "192.0.2.1");
  chaos.klass = 3;
  c.push_back({"answer class CH", Asking().Answer(chaos).Build(),
               DnsReason::kRecordClass});
  c.push_back({"A of 5 octets",
               Asking().Answer(DnsRaw(q, 1, {192, 0, 2, 1, 0})).Build(),
               DnsReason::kRdlength});
  c.push_back({"AAAA of 4 octets",
               Asking(q, 28).Answer(DnsRaw(q, 28, {192, 0, 2, 1})).Build(),
               DnsReason::kRdlength});
  c.push_back({"CNAME RDATA longer than its name",
               Asking().Answer(DnsRaw(q, 5, {1, 'b', 0, 0})).Build(),
               DnsReason::kRdlength});
  DnsLayout layout;
  std::vector<uint8_t> cname =
      Asking().Answer(DnsRaw(q, 5, {1, 'b', 0})).Build(&layout);
  c.push_back({"CNAME RDATA shorter than its name",
               Set(cname, layout.rdlengths[0], {0, 2}), DnsReason::kRdlength});
  const std::vector<uint8_t> a = Asking().Answer(DnsA(q, "192.0.2.1")).Build();
  c.push_back(
      {"answer fields cut", Cut(a, a.size() - 8), DnsReason::kTruncated});
  c.push_back(
      {"answer RDATA cut", Cut(a, a.size() - 1), DnsReason::kTruncated});
  c.push_back(
      {"second answer missing",
       Asking().Answer(DnsA(q, "192.0.2.1")).Counts(-1, 2, -1, -1).Build(),
       DnsReason::kTruncated});
  c.push_back({"answer owner with a space",
               Asking().Answer(DnsA("a b.example.com", "192.0.2.1")).Build(),
               DnsReason::kNameChar});
  c.push_back({"TXT skipped",
               Asking()
                   .Answer(DnsRaw(q, kTxt, {2, 'h', 'i'}))
                   .Answer(DnsA(q, "192.0.2.1"))
                   .Build(),
               DnsReason::kOk});
}

void SizeCases(std::vector<DnsCase>& c) {
  const std::string q = "www.example.com";
  DnsMessageBuilder many = Asking();
  for (int i = 0; i < 32; ++i) many.Answer(DnsA(q, "192.0.2.1"));
  c.push_back({"32 answers", many.Build(), DnsReason::kOk});
  c.push_back({"33 answers", many.Answer(DnsA(q, "192.0.2.2")).Build(),
               DnsReason::kTooManyAnswers});
  const std::vector<uint8_t> big(2100, 7);
  c.push_back({"answer beyond the view",
               Asking()
                   .Answer(DnsRaw(q, kPrivate, big))
                   .Answer(DnsA(q, "192.0.2.1"))
                   .Build(),
               DnsReason::kTooLong});
  DnsLayout layout;
  std::vector<uint8_t> past =
      Asking().Answer(DnsRaw(q, kPrivate, big)).Build(&layout);
  c.push_back({"RDATA past the end of a long message",
               Set(past, layout.rdlengths[0], {0x0b, 0xb8}),
               DnsReason::kTruncated});
  c.push_back({"long message, answers in the view",
               Asking()
                   .Answer(DnsA(q, "192.0.2.1"))
                   .Additional(DnsRaw("", kPrivate, big))
                   .Build(),
               DnsReason::kOk});
}

}  // namespace

std::vector<DnsCase> DnsEdgeCases() {
  std::vector<DnsCase> cases;
  HeaderCases(cases);
  NameCases(cases);
  RecordCases(cases);
  SizeCases(cases);
  return cases;
}

}  // namespace testing
}  // namespace egress
