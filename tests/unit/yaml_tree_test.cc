#include "userspace/policy/yaml_tree.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress::policy::yaml {
namespace {

using ::testing::HasSubstr;

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

TEST(YamlTreeTest, TooManyDocumentsAreRefused) {
  std::string text;
  for (int i = 0; i <= kMaxDocuments; ++i) absl::StrAppend(&text, "--- a\n");
  EXPECT_THAT(ErrorOf(text), HasSubstr("more than 64 documents"));
}

}  // namespace
}  // namespace egress::policy::yaml
