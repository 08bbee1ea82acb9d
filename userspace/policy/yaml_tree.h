// A YAML document as a read-only tree, loaded by libyaml's event parser, or
// first by yaml_tree_simple.cc for the plain subset policy files are written
// in: libyaml (its scanner, an allocation per event) took 0.4 s of CPU for
// a 100,000-rule file, the simple reader 0.09 s. It builds exactly the
// same tree (a test compares them on edited texts) and declines everything
// else, errors included, to libyaml.
//
// Why not yaml-cpp's YAML::Node: loading a 100,000-rule policy file (9.5 MB)
// took 6.8 s of CPU and 800 MB in yaml-cpp 0.7, and its parser can hand out
// empty documents forever on some malformed input. libyaml parses the same
// file in a fraction of a second, linearly, and reports every syntax error
// with its position. libyaml reads YAML 1.1, which refuses a plain scalar
// that starts with ':' inside a flow collection (`{cidr: ::/0}`), written
// by people and by yaml-cpp's emitter alike; text libyaml refuses is read
// again by yaml-cpp (YAML 1.2), whose verdict and messages then stand. Nodes
// live in one arena per document; an alias is the anchored node itself (shared,
// never copied), and a document whose aliases would expand past a bound is
// refused, so a small file cannot make the reader of the tree walk billions of
// nodes.
#ifndef EGRESS_USERSPACE_POLICY_YAML_TREE_H_
#define EGRESS_USERSPACE_POLICY_YAML_TREE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress::policy::yaml {

enum class NodeType : uint8_t { kNull, kScalar, kSequence, kMap };

// Bounds of a Document, whatever the text.
// More documents than any policy file has (it holds one).
inline constexpr int kMaxDocuments = 64;
// Well above the ~1.5 million nodes of a 100,000-rule file.
inline constexpr size_t kMaxNodes = 8'000'000;
// Nodes a walk of the tree may visit, aliases followed: a few times what the
// largest file holds, far below what nested aliases make of a few lines.
inline constexpr uint64_t kMaxExpanded = 32'000'000;
inline constexpr size_t kMaxDepth = 256;

// Error texts: "L:C" then one of these. A syntax error of libyaml sends the
// text to yaml-cpp; a bound is final.
inline constexpr char kSyntaxError[] = ": YAML syntax error: ";

// A position in the text, 1-based; line 0 = unknown.
struct Position {
  int line = 0;
  int column = 0;
};

// "L:C: YAML too large: WHAT".
absl::Status TooLarge(Position at, absl::string_view what);

class Document;

// A handle to one node of a Document (which must outlive it). A default
// Node is null with no position: what a missing field reads as.
class Node {
 public:
  Node() = default;

  NodeType Type() const;
  bool IsNull() const { return Type() == NodeType::kNull; }
  bool IsScalar() const { return Type() == NodeType::kScalar; }
  bool IsSequence() const { return Type() == NodeType::kSequence; }
  bool IsMap() const { return Type() == NodeType::kMap; }
  // The text of a scalar ("" for other nodes).
  std::string Scalar() const;
  // The same without a copy: valid while the Document lives.
  absl::string_view Text() const;
  // Whether a scalar was written plain: no quotes, no tag. Only a plain
  // scalar is a boolean or a number in YAML; "true" and 'true' are strings.
  bool Plain() const;
  Position Mark() const;
  // A sequence's items or a mapping's entries; 0 for other nodes.
  size_t size() const;
  // A sequence's items, or a mapping's keys and values alternating.
  std::vector<Node> Children() const;
  // Children()[i] without building the vector: a sequence's item i, or a
  // mapping's key i/2 (i even) or value (i odd). i < size() for a sequence,
  // i < 2 * size() for a mapping.
  Node Child(size_t i) const;
  // A mapping's (key, value) pairs in file order.
  std::vector<std::pair<Node, Node>> Entries() const;

 private:
  friend class Document;
  Node(const Document* doc, uint32_t index) : doc_(doc), index_(index) {}

  const Document* doc_ = nullptr;
  uint32_t index_ = 0;
};

// Every document of one YAML text, in order.
class Document {
 public:
  // Nodes, documents and alias expansion are bounded; past a bound, and on
  // any syntax error, the error is InvalidArgument "L:C: YAML syntax error:
  // ..." (position first, so the caller can put the file name before it).
  static absl::StatusOr<std::unique_ptr<Document>> Parse(
      absl::string_view text);

  // Parse reads a text with the first of these that takes it.
  enum class Reader {
    // yaml_tree_simple.cc: the subset policy files are written in, fast.
    // Declines (Unimplemented) whatever else, errors included.
    kSimple,
    // libyaml (YAML 1.1).
    kLibyaml,
    // yaml-cpp (YAML 1.2), for what libyaml calls a syntax error.
    kYamlCpp,
  };
  // One reader alone, for tests that compare them.
  static absl::StatusOr<std::unique_ptr<Document>> ParseWith(
      Reader reader, absl::string_view text);

  // The documents' root nodes (an empty document's root is null).
  const std::vector<Node>& Roots() const { return roots_; }

 private:
  friend class Node;
  // 24 bytes a node: a 100,000-rule file has about 2 million.
  struct NodeData {
    NodeType type = NodeType::kNull;
    bool plain = false;  // a scalar with no quotes and no tag
    Position mark;
    uint32_t first = 0;     // scalar: offset in text_; else in children_
    uint32_t count = 0;     // scalar: length; else number of children
    uint32_t expanded = 1;  // nodes a walk visits, aliases followed (at
                            // most kMaxExpanded)
  };
  class Builder;
  class SimpleReader;
  class YamlCppReader;

  Document() = default;
  // Room for the nodes and text of `text` at once: growing a vector of
  // millions of nodes step by step copies each several times.
  void Reserve(absl::string_view text);
  // The simple reader into this (empty) document; false if it declines.
  bool ReadSimple(absl::string_view text);
  static absl::StatusOr<std::unique_ptr<Document>> ParseWithLibyaml(
      absl::string_view text);
  static absl::StatusOr<std::unique_ptr<Document>> ParseWithYamlCpp(
      absl::string_view text);

  std::vector<NodeData> nodes_;
  std::vector<uint32_t> children_;  // each collection's, contiguous
  std::string text_;                // every scalar, end to end
  std::vector<Node> roots_;
};

// Node's accessors are inline: the policy file reader calls them some ten
// million times for a 100,000-rule file.
inline NodeType Node::Type() const {
  return doc_ == nullptr ? NodeType::kNull : doc_->nodes_[index_].type;
}

inline absl::string_view Node::Text() const {
  if (!IsScalar()) return "";
  const Document::NodeData& n = doc_->nodes_[index_];
  return absl::string_view(doc_->text_).substr(n.first, n.count);
}

inline bool Node::Plain() const {
  return IsScalar() && doc_->nodes_[index_].plain;
}

inline Node Node::Child(size_t i) const {
  return Node(doc_, doc_->children_[doc_->nodes_[index_].first + i]);
}

inline Position Node::Mark() const {
  return doc_ == nullptr ? Position{} : doc_->nodes_[index_].mark;
}

inline size_t Node::size() const {
  if (IsSequence()) return doc_->nodes_[index_].count;
  if (IsMap()) return doc_->nodes_[index_].count / 2;
  return 0;
}

}  // namespace egress::policy::yaml

#endif  // EGRESS_USERSPACE_POLICY_YAML_TREE_H_
