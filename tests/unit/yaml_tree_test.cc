#include "userspace/policy/yaml_tree.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress::policy::yaml {
namespace {

using ::testing::HasSubstr;
using Reader = Document::Reader;

std::unique_ptr<Document> MustParse(const std::string& text) {
  absl::StatusOr<std::unique_ptr<Document>> doc = Document::Parse(text);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? std::move(*doc) : nullptr;
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<std::unique_ptr<Document>> doc = Document::Parse(text);
  return doc.ok() ? "no error" : std::string(doc.status().message());
}

TEST(YamlTreeTest, MappingsSequencesScalarsAndTheirPositions) {
  auto doc = MustParse("a:\n  b: c\n  d: [1, two]\n");
  ASSERT_EQ(doc->Roots().size(), 1u);
  const Node root = doc->Roots()[0];
  ASSERT_TRUE(root.IsMap());
  ASSERT_EQ(root.size(), 1u);
  const auto entries = root.Entries()[0].second.Entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first.Scalar(), "b");
  EXPECT_EQ(entries[0].second.Scalar(), "c");
  EXPECT_EQ(entries[0].first.Mark().line, 2);
  EXPECT_EQ(entries[0].first.Mark().column, 3);
  EXPECT_EQ(entries[0].second.Mark().column, 6);
  const Node list = entries[1].second;
  ASSERT_TRUE(list.IsSequence());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list.Children()[1].Scalar(), "two");
  EXPECT_EQ(list.Children()[1].Mark().column, 10);
}

TEST(YamlTreeTest, PlainNullWordsAreNullAndQuotedOnesAreText) {
  auto doc = MustParse("a: ~\nb: null\nc: NULL\nd:\ne: ''\nf: \"null\"\n");
  const auto e = doc->Roots()[0].Entries();
  ASSERT_EQ(e.size(), 6u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(e[i].second.IsNull()) << i;
  EXPECT_TRUE(e[4].second.IsScalar());
  EXPECT_EQ(e[4].second.Scalar(), "");
  EXPECT_EQ(e[5].second.Scalar(), "null");
  // A missing field reads as a null without a position.
  EXPECT_TRUE(Node().IsNull());
  EXPECT_EQ(Node().Mark().line, 0);
}

// Every reader tells a plain scalar from a quoted or tagged one: only the
// plain one may be read as a boolean or a number.
TEST(YamlTreeTest, EachReaderTellsPlainScalarsFromQuotedOnes) {
  const std::string block =
      "a: true\nb: \"true\"\nc: 'true'\nd: !!str true\ne: 443\n";
  const std::string flow = "{a: true, b: \"true\", c: 'true', e: 443}\n";
  for (Reader reader : {Reader::kSimple, Reader::kLibyaml, Reader::kYamlCpp}) {
    for (const std::string& text : {block, flow}) {
      absl::StatusOr<std::unique_ptr<Document>> doc =
          Document::ParseWith(reader, text);
      if (reader == Reader::kSimple && !doc.ok()) continue;  // declined (!!)
      ASSERT_TRUE(doc.ok()) << doc.status();
      for (const auto& [key, value] : (*doc)->Roots()[0].Entries()) {
        const bool plain = key.Text() == "a" || key.Text() == "e";
        EXPECT_EQ(value.Plain(), plain) << "reader " << static_cast<int>(reader)
                                        << ", " << key.Text() << " in " << text;
        EXPECT_TRUE(key.Plain());
      }
    }
  }
  EXPECT_FALSE(Node().Plain());
}

TEST(YamlTreeTest, EveryDocumentIsARoot) {
  auto doc = MustParse("a: 1\n---\n---\nb: 2\n");
  ASSERT_EQ(doc->Roots().size(), 3u);
  EXPECT_TRUE(doc->Roots()[1].IsNull());
  EXPECT_EQ(doc->Roots()[2].Entries()[0].first.Scalar(), "b");
}

TEST(YamlTreeTest, AnAliasIsTheAnchoredNode) {
  auto doc = MustParse("a: &x {p: 1}\nb: *x\n");
  const auto e = doc->Roots()[0].Entries();
  ASSERT_TRUE(e[1].second.IsMap());
  EXPECT_EQ(e[1].second.Entries()[0].second.Scalar(), "1");
}

// libyaml reads YAML 1.1, which refuses this; yaml-cpp reads it.
TEST(YamlTreeTest, FlowValuesStartingWithAColonAreRead) {
  auto doc = MustParse("to: [{cidr: ::/0}, {cidr: ::1/128}]\n");
  const Node list = doc->Roots()[0].Entries()[0].second;
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list.Children()[0].Entries()[0].second.Scalar(), "::/0");
  EXPECT_EQ(list.Children()[1].Entries()[0].second.Scalar(), "::1/128");
  EXPECT_EQ(list.Children()[1].Mark().line, 1);
}

TEST(YamlTreeTest, SyntaxErrorsSayWhere) {
  EXPECT_THAT(ErrorOf("a: [b\n"), HasSubstr("2:1: YAML syntax error: "));
}

TEST(YamlTreeTest, AliasesThatExpandTooFarAreRefused) {
  // Nine levels of ten: a billion nodes from a few hundred bytes.
  std::string text = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&text, "l", i, ": &l", i, " [");
    for (int j = 0; j < 10; ++j)
      absl::StrAppend(&text, j ? ", " : "", "*l", i - 1);
    absl::StrAppend(&text, "]\n");
  }
  EXPECT_THAT(ErrorOf(text), HasSubstr("YAML too large: aliases expand to"));
}

TEST(YamlTreeTest, DeepNestingIsRefused) {
  const std::string text =
      std::string(kMaxDepth + 10, '[') + std::string(kMaxDepth + 10, ']');
  EXPECT_THAT(ErrorOf(text), HasSubstr("YAML too large: nested deeper than"));
}

// yaml-cpp stops at its own depth guard (2000) with "bad file"; the
// fallback reader reports the same bound as libyaml's, in the same words.
TEST(YamlTreeTest, DeepNestingIsRefusedByTheYamlCppReaderToo) {
  for (const std::string& text :
       {std::string(50'000, '[') + std::string(50'000, ']'),
        "a: " + std::string(50'000, '['),
        std::string(kMaxDepth + 10, '[') + std::string(kMaxDepth + 10, ']')}) {
    absl::StatusOr<std::unique_ptr<Document>> doc =
        Document::ParseWith(Reader::kYamlCpp, text);
    ASSERT_FALSE(doc.ok());
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(doc.status().message(),
                HasSubstr(absl::StrCat("YAML too large: nested deeper than ",
                                       kMaxDepth)))
        << text.size();
    EXPECT_THAT(doc.status().message(), ::testing::Not(HasSubstr("bad file")));
  }
  // Through Parse: libyaml reports its syntax error first (the flow value
  // starting with ':'), and the text goes to yaml-cpp.
  const std::string deep = "a: [::/0]\nb: " + std::string(50'000, '[') +
                           std::string(50'000, ']') + "\n";
  EXPECT_THAT(ErrorOf(deep), HasSubstr("YAML too large: nested deeper than"));
}

TEST(YamlTreeTest, TooManyDocumentsAreRefused) {
  std::string text;
  for (int i = 0; i <= kMaxDocuments; ++i) absl::StrAppend(&text, "--- a\n");
  EXPECT_THAT(ErrorOf(text), HasSubstr("more than 64 documents"));
}

// ---------------------------------------------------------------------------
// The simple reader (yaml_tree_simple.cc) builds libyaml's tree or declines.

// "" if the trees at `a` and `b` are the same (types, text, positions,
// children), else where they differ first.
std::string Difference(const Node& a, const Node& b, const std::string& at) {
  const auto where = [&](const Node& n) {
    return absl::StrCat(n.Mark().line, ":", n.Mark().column);
  };
  if (a.Type() != b.Type() || a.Text() != b.Text() || a.Plain() != b.Plain() ||
      a.Mark().line != b.Mark().line || a.Mark().column != b.Mark().column ||
      a.size() != b.size()) {
    return absl::StrCat(at, ": type ", static_cast<int>(a.Type()), " vs ",
                        static_cast<int>(b.Type()), ", \"", a.Text(),
                        "\" vs \"", b.Text(), "\", plain ", a.Plain(), " vs ",
                        b.Plain(), ", at ", where(a), " vs ", where(b),
                        ", size ", a.size(), " vs ", b.size());
  }
  const std::vector<Node> ac = a.Children();
  const std::vector<Node> bc = b.Children();
  for (size_t i = 0; i < ac.size(); ++i) {
    if (std::string d = Difference(ac[i], bc[i], absl::StrCat(at, "/", i));
        !d.empty()) {
      return d;
    }
  }
  return "";
}

// Reads `text` with the simple reader and with libyaml; if the simple one
// takes it, libyaml must too, into the same tree. True if it was taken.
bool SimpleMatchesLibyaml(const std::string& text) {
  absl::StatusOr<std::unique_ptr<Document>> simple =
      Document::ParseWith(Reader::kSimple, text);
  if (!simple.ok()) {
    EXPECT_EQ(simple.status().code(), absl::StatusCode::kUnimplemented);
    return false;
  }
  absl::StatusOr<std::unique_ptr<Document>> libyaml =
      Document::ParseWith(Reader::kLibyaml, text);
  EXPECT_TRUE(libyaml.ok()) << "taken by the simple reader only:\n"
                            << text << "\n"
                            << libyaml.status();
  if (!libyaml.ok()) return true;
  const std::vector<Node>& a = (*simple)->Roots();
  const std::vector<Node>& b = (*libyaml)->Roots();
  EXPECT_EQ(a.size(), b.size()) << text;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_EQ(Difference(a[i], b[i], "root"), "") << text;
  }
  return true;
}

// Policy files in every shape the simple reader takes.
const char* const kSimpleTexts[] = {
    // The shape of a 100,000-rule file.
    "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
    "  name: big\nspec:\n  target:\n    cgroupPath: /egress-big\n"
    "  mode: enforce\n  egress:\n  - to:\n"
    "    - ipBlock: {cidr: 10.1.134.157/32}\n    ports:\n"
    "    - port: 41021\n      protocol: TCP\n  - to:\n"
    "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/16]}\n"
    "    ports:\n    - port: 1000\n      endPort: 2000\n"
    "    - {port: https, protocol: ANY}\n",
    // Indented sequences, comments everywhere, quoting, names, IPv6.
    "# a policy\napiVersion: \"egress.dev/v1alpha1\"   # quoted\n"
    "kind: 'EgressPolicy'\n\nmetadata:\n  name: web  \n"
    "  annotations: {description: \"the \\\"web\\\" app\", owner: 'it''s'}\n"
    "spec:\n  target: {systemdUnit: web.service}\n  egress:\n"
    "    # the resolver\n    - name: dns\n      comment: the resolver\n"
    "      to: [{ipBlock: {cidr: 2001:db8::53/128}}, {domainNames: "
    "[\"*.example.com\", api.example.com]}]\n"
    "      ports: [{port: domain}, {port: 53, protocol: udp}]\n"
    "  egressDeny:\n  -   to:\n      -   ipBlock:\n"
    "            cidr: 169.254.169.254/32\n",
    // Empty values and null words in every place.
    "a:\nb: ~\nc: null\nd:   # nothing\ne: [Null, NULL, '', \"\"]\n"
    "f:\n  g:\n  h: {}\n  i: []\n",
    "a:\nb:\n  - x\n  -   y  # c\nc:\n- z\n- {k: v}\nd: e\n",
    "- a\n- b: c\n  d: e\n- [f, g]\n-  h: i\n   j: k\n",
    "  a: 1\n  b:\n   - c\n",
    "a: b#c\nd: e,f]g\n\"h i\": j\n'k': l:m\n",
    "a: [b c, d-e, 1.5]\nf: {g: [h], i: {j: k}}\n",
    "a:\n",
    "a: x\n# the end",
};

TEST(SimpleReaderTest, ReadsPolicyShapesAsLibyamlDoes) {
  for (const char* text : kSimpleTexts) {
    EXPECT_TRUE(SimpleMatchesLibyaml(text)) << "declined:\n" << text;
  }
}

TEST(SimpleReaderTest, DeclinesWhatItDoesNotRead) {
  const char* const declined[] = {
      "a: &x 1\nb: *x\n",        // anchors
      "a: !!str 1\n",            // tags
      "a: |\n  text\n",          // block scalars
      "a: one\n  two\n",         // a plain scalar on two lines
      "a: [b,\n  c]\n",          // a flow collection on two lines
      "a: 'b\n  c'\n",           // a quoted scalar on two lines
      "a: b\n---\nc: d\n",       // documents
      "%YAML 1.1\n---\na: b\n",  // directives
      "a:\tb\n",                 // tabs
      "a: b\r\n",                // CR
      "a: caf\xc3\xa9\n",        // not ASCII
      "a: -1\n",                 // a plain scalar starting "-"
      "a: {cidr: ::/0}\n",       // refused by libyaml, read by yaml-cpp
      "a: b: c\n",               // an error
      "a: b\n  c: d\n",          // an error
      "- a\nb: c\n",             // an error
      "? a\n: b\n",              // complex keys
      "a: {b, c}\n",             // flow entries without values
      "a: [b: c]\n",             // single-pair mappings
      "a: \"\\t\"\n",            // escapes
      "",                        // no document
      "# only a comment\n",      // no document
      "plain\n",                 // a scalar document
  };
  for (const char* text : declined) {
    EXPECT_FALSE(SimpleMatchesLibyaml(text)) << "taken:\n" << text;
  }
  // Parse still reads them as before.
  auto doc = MustParse("a: {cidr: ::/0}\n");
  EXPECT_EQ(doc->Roots()[0].Entries()[0].second.Entries()[0].second.Scalar(),
            "::/0");
  EXPECT_THAT(ErrorOf("a: b: c\n"), HasSubstr("1:5: "));
}

// Random edits of the texts above, read by both: whatever the simple reader
// takes must be libyaml's tree.
TEST(SimpleReaderTest, EditedTextsAreReadAsLibyamlDoesOrDeclined) {
  std::mt19937 random(13);
  const std::string alphabet = " \n-:#,[]{}'\"\\ab01~&*!?|>%@\t";
  int taken = 0, tried = 0;
  for (const char* base : kSimpleTexts) {
    for (int i = 0; i < 1500; ++i) {
      std::string text = base;
      const int edits = 1 + static_cast<int>(random() % 3);
      for (int e = 0; e < edits && !text.empty(); ++e) {
        const size_t at = random() % (text.size() + 1);
        const char c = alphabet[random() % alphabet.size()];
        switch (random() % 3) {
          case 0:
            text.insert(at, 1, c);
            break;
          case 1:
            if (at < text.size()) text.erase(at, 1);
            break;
          default:
            if (at < text.size()) text[at] = c;
            break;
        }
      }
      ++tried;
      if (SimpleMatchesLibyaml(text)) ++taken;
      if (::testing::Test::HasFailure()) return;
    }
  }
  // Both outcomes are exercised.
  EXPECT_GT(taken, tried / 10);
  EXPECT_LT(taken, tried);
}

// The shipped example policies are read by the simple reader, as libyaml
// reads them.
TEST(SimpleReaderTest, ShippedPoliciesAreReadAsLibyamlDoes) {
  const std::filesystem::path dir =
      std::filesystem::path(EGRESS_SOURCE_DIR) / "policies";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_TRUE(SimpleMatchesLibyaml(text.str())) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 4);
}

}  // namespace
}  // namespace egress::policy::yaml
