// The second reader of yaml_tree.h: yaml-cpp, for text libyaml refuses.
#include <sstream>

#include "absl/strings/str_cat.h"
#include "userspace/policy/yaml_tree.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace egress::policy::yaml {
namespace {

// yaml-cpp 0.7 (Debian 12) can hand out empty documents forever on some
// malformed input (a file holding only ","), and YAML::LoadAll then grows
// without bound. A first pass with a handler that keeps nothing proves that
// the document stream ends before LoadAll runs. Throws YAML::Exception on
// syntax errors, like LoadAll.
class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

bool DocumentStreamEnds(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  for (int i = 0; i < kMaxDocuments; ++i) {
    if (!parser.HandleNextDocument(ignore)) return true;
  }
  return false;
}

Position PositionOf(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

}  // namespace

// Copies yaml-cpp's nodes into the arena. yaml-cpp shares an aliased node
// between its uses; the copy expands it, counted against kMaxExpanded.
class Document::YamlCppReader {
 public:
  explicit YamlCppReader(Document* doc) : doc_(*doc) {}

  absl::StatusOr<uint32_t> Copy(const YAML::Node& node, size_t depth) {
    const Position at = PositionOf(node.Mark());
    if (++visited_ > kMaxExpanded || doc_.nodes_.size() >= kMaxNodes) {
      return TooLarge(at, absl::StrCat("more than ", kMaxNodes, " nodes"));
    }
    if (depth > kMaxDepth) {
      return TooLarge(at, absl::StrCat("nested deeper than ", kMaxDepth));
    }
    const auto index = static_cast<uint32_t>(doc_.nodes_.size());
    doc_.nodes_.emplace_back();
    doc_.nodes_[index].mark = at;
    std::vector<uint32_t> children;
    switch (node.Type()) {
      case YAML::NodeType::Scalar: {
        const std::string& text = node.Scalar();
        doc_.nodes_[index].type = NodeType::kScalar;
        // yaml-cpp tags a plain scalar "?" and a quoted one "!".
        doc_.nodes_[index].plain = node.Tag() == "?";
        doc_.nodes_[index].first = doc_.text_.size();
        doc_.nodes_[index].count = text.size();
        doc_.text_ += text;
        return index;
      }
      case YAML::NodeType::Sequence:
        doc_.nodes_[index].type = NodeType::kSequence;
        for (YAML::const_iterator it = node.begin(); it != node.end(); ++it) {
          absl::StatusOr<uint32_t> child = Copy(*it, depth + 1);
          if (!child.ok()) return child.status();
          children.push_back(*child);
        }
        break;
      case YAML::NodeType::Map:
        doc_.nodes_[index].type = NodeType::kMap;
        for (YAML::const_iterator it = node.begin(); it != node.end(); ++it) {
          absl::StatusOr<uint32_t> key = Copy(it->first, depth + 1);
          if (!key.ok()) return key.status();
          children.push_back(*key);
          absl::StatusOr<uint32_t> value = Copy(it->second, depth + 1);
          if (!value.ok()) return value.status();
          children.push_back(*value);
        }
        break;
      default:  // null, undefined
        return index;
    }
    doc_.nodes_[index].first = doc_.children_.size();
    doc_.nodes_[index].count = children.size();
    doc_.children_.insert(doc_.children_.end(), children.begin(),
                          children.end());
    return index;
  }

 private:
  Document& doc_;
  uint64_t visited_ = 0;
};

absl::StatusOr<std::unique_ptr<Document>> Document::ParseWithYamlCpp(
    absl::string_view text) {
  std::unique_ptr<Document> doc(new Document());
  YamlCppReader reader(doc.get());
  try {
    const std::string copy(text);
    if (!DocumentStreamEnds(copy)) {
      return absl::InvalidArgumentError(
          absl::StrCat("1:1", kSyntaxError, "more than ", kMaxDocuments,
                       " documents, or input the parser cannot get past (a "
                       "stray ',' or '-'?)"));
    }
    for (const YAML::Node& root : YAML::LoadAll(copy)) {
      if (root.IsNull()) {
        doc->roots_.push_back(Node());
        continue;
      }
      absl::StatusOr<uint32_t> index = reader.Copy(root, 0);
      if (!index.ok()) return index.status();
      doc->roots_.push_back(Node(doc.get(), *index));
    }
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own depth guard (2000 levels) says only "bad file"; this
    // is the bound libyaml's reader and Copy report, so say that.
    Position at = PositionOf(e.mark);
    if (at.line == 0) at = {1, 1};
    return TooLarge(at, absl::StrCat("nested deeper than ", kMaxDepth));
  } catch (const YAML::Exception& e) {
    const Position at = PositionOf(e.mark);
    return absl::InvalidArgumentError(
        absl::StrCat(at.line == 0 ? 1 : at.line, ":",
                     at.column == 0 ? 1 : at.column, kSyntaxError, e.msg));
  }
  return doc;
}

}  // namespace egress::policy::yaml
