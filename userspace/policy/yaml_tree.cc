#include "userspace/policy/yaml_tree.h"

#include <yaml.h>

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress::policy::yaml {
namespace {

constexpr char kNullTag[] = "tag:yaml.org,2002:null";

Position PositionOf(const yaml_mark_t& mark) {
  return {static_cast<int>(mark.line) + 1, static_cast<int>(mark.column) + 1};
}

// What the text says that libyaml refuses; yaml-cpp gets a second look.
absl::Status SyntaxError(Position at, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(at.line, ":", at.column, kSyntaxError, what));
}

// What YAML 1.2's core schema reads as null when written plainly.
bool IsNullScalar(const yaml_event_t& e) {
  const auto& s = e.data.scalar;
  if (s.tag != nullptr) {
    return absl::string_view(reinterpret_cast<const char*>(s.tag)) == kNullTag;
  }
  if (s.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const absl::string_view v(reinterpret_cast<const char*>(s.value), s.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

// Owns a libyaml parser and its current event.
class Events {
 public:
  explicit Events(absl::string_view text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(
        &parser_, reinterpret_cast<const unsigned char*>(text.data()),
        text.size());
  }
  ~Events() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  absl::StatusOr<const yaml_event_t*> Next() {
    if (has_event_) yaml_event_delete(&event_);
    has_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      std::string what = parser_.problem != nullptr ? parser_.problem : "?";
      if (parser_.context != nullptr) {
        absl::StrAppend(&what, " ", parser_.context);
      }
      return SyntaxError(PositionOf(parser_.problem_mark), what);
    }
    has_event_ = true;
    return &event_;
  }

 private:
  yaml_parser_t parser_;
  yaml_event_t event_;
  bool has_event_ = false;
};

}  // namespace

absl::Status TooLarge(Position at, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(at.line, ":", at.column, ": YAML too large: ", what));
}

// Builds the arena from the event stream: each collection's children are
// collected on one pending stack and moved to children_ when it ends.
class Document::Builder {
 public:
  explicit Builder(Document* doc) : doc_(*doc) {}

  absl::Status Add(const yaml_event_t& e) {
    switch (e.type) {
      case YAML_DOCUMENT_START_EVENT:
        if (++documents_ > kMaxDocuments) {
          return TooLarge(
              PositionOf(e.start_mark),
              absl::StrCat("more than ", kMaxDocuments, " documents"));
        }
        anchors_.clear();
        root_set_ = false;
        return absl::OkStatus();
      case YAML_DOCUMENT_END_EVENT:
        if (!root_set_) doc_.roots_.push_back(Node());
        return absl::OkStatus();
      case YAML_SCALAR_EVENT: {
        const bool null = IsNullScalar(e);
        const auto& s = e.data.scalar;
        absl::StatusOr<uint32_t> made = NewNode(
            null ? NodeType::kNull : NodeType::kScalar, e.start_mark, s.anchor);
        if (!made.ok()) return made.status();
        const uint32_t index = *made;
        if (!null) {
          if (doc_.text_.size() + s.length >
              std::numeric_limits<uint32_t>::max()) {
            return TooLarge(PositionOf(e.start_mark), "too much text");
          }
          doc_.nodes_[index].plain =
              s.tag == nullptr && s.style == YAML_PLAIN_SCALAR_STYLE;
          doc_.nodes_[index].first = doc_.text_.size();
          doc_.nodes_[index].count = s.length;
          doc_.text_.append(reinterpret_cast<const char*>(s.value), s.length);
        }
        return Attach(index, e.start_mark);
      }
      case YAML_SEQUENCE_START_EVENT:
        return Open(NodeType::kSequence, e.start_mark,
                    e.data.sequence_start.anchor);
      case YAML_MAPPING_START_EVENT:
        return Open(NodeType::kMap, e.start_mark, e.data.mapping_start.anchor);
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        return Close(e.start_mark);
      case YAML_ALIAS_EVENT: {
        const std::string name(
            reinterpret_cast<const char*>(e.data.alias.anchor));
        auto it = anchors_.find(name);
        if (it == anchors_.end()) {
          return SyntaxError(PositionOf(e.start_mark),
                             absl::StrCat("unknown alias *", name));
        }
        if (std::find(open_.begin(), open_.end(), it->second) != open_.end()) {
          // A cycle: final, as yaml-cpp would follow it forever.
          return TooLarge(
              PositionOf(e.start_mark),
              absl::StrCat("alias *", name, " is inside the node it names"));
        }
        return Attach(it->second, e.start_mark);
      }
      default:
        return absl::OkStatus();
    }
  }

 private:
  absl::StatusOr<uint32_t> NewNode(NodeType type, const yaml_mark_t& mark,
                                   const yaml_char_t* anchor) {
    if (doc_.nodes_.size() >= kMaxNodes) {
      return TooLarge(PositionOf(mark),
                      absl::StrCat("more than ", kMaxNodes, " nodes"));
    }
    const auto index = static_cast<uint32_t>(doc_.nodes_.size());
    NodeData& n = doc_.nodes_.emplace_back();
    n.type = type;
    n.mark = PositionOf(mark);
    if (anchor != nullptr) {
      anchors_[reinterpret_cast<const char*>(anchor)] = index;
    }
    return index;
  }

  // Makes `index` the next child of the open collection, or the root.
  absl::Status Attach(uint32_t index, const yaml_mark_t& mark) {
    if (open_.empty()) {
      doc_.roots_.push_back(Node(&doc_, index));
      root_set_ = true;
      return absl::OkStatus();
    }
    pending_.push_back(index);
    // Both at most kMaxExpanded: no overflow before the check.
    uint32_t& expanded = doc_.nodes_[open_.back()].expanded;
    expanded += doc_.nodes_[index].expanded;
    if (expanded > kMaxExpanded) {
      return TooLarge(
          PositionOf(mark),
          absl::StrCat("aliases expand to more than ", kMaxExpanded, " nodes"));
    }
    return absl::OkStatus();
  }

  absl::Status Open(NodeType type, const yaml_mark_t& mark,
                    const yaml_char_t* anchor) {
    if (open_.size() >= kMaxDepth) {
      return TooLarge(PositionOf(mark),
                      absl::StrCat("nested deeper than ", kMaxDepth));
    }
    absl::StatusOr<uint32_t> index = NewNode(type, mark, anchor);
    if (!index.ok()) return index.status();
    open_.push_back(*index);
    starts_.push_back(pending_.size());
    return absl::OkStatus();
  }

  absl::Status Close(const yaml_mark_t& mark) {
    const uint32_t index = open_.back();
    const size_t start = starts_.back();
    open_.pop_back();
    starts_.pop_back();
    NodeData& n = doc_.nodes_[index];
    n.first = doc_.children_.size();
    n.count = pending_.size() - start;
    doc_.children_.insert(doc_.children_.end(), pending_.begin() + start,
                          pending_.end());
    pending_.resize(start);
    return Attach(index, mark);
  }

  Document& doc_;
  int documents_ = 0;
  bool root_set_ = false;
  absl::flat_hash_map<std::string, uint32_t> anchors_;
  std::vector<uint32_t> open_;     // the collections not ended yet
  std::vector<size_t> starts_;     // where each one's children start
  std::vector<uint32_t> pending_;  // their children so far
};

void Document::Reserve(absl::string_view text) {
  // A node takes 4 bytes of text or more ("a: b" is three nodes in 5).
  const size_t nodes = std::min(text.size() / 4 + 16, kMaxNodes);
  nodes_.reserve(nodes);
  children_.reserve(nodes);
  text_.reserve(text.size());
}

absl::StatusOr<std::unique_ptr<Document>> Document::ParseWith(
    Reader reader, absl::string_view text) {
  switch (reader) {
    case Reader::kSimple: {
      std::unique_ptr<Document> doc(new Document());
      doc->Reserve(text);
      if (!doc->ReadSimple(text)) {
        return absl::UnimplementedError("not in the simple subset");
      }
      return doc;
    }
    case Reader::kLibyaml:
      return ParseWithLibyaml(text);
    case Reader::kYamlCpp:
      return ParseWithYamlCpp(text);
  }
  return absl::InternalError("unknown reader");
}

absl::StatusOr<std::unique_ptr<Document>> Document::Parse(
    absl::string_view text) {
  if (absl::StatusOr<std::unique_ptr<Document>> simple =
          ParseWith(Reader::kSimple, text);
      simple.ok()) {
    return simple;
  }
  absl::StatusOr<std::unique_ptr<Document>> doc = ParseWithLibyaml(text);
  if (doc.ok() || !absl::StrContains(doc.status().message(), kSyntaxError)) {
    return doc;
  }
  return ParseWithYamlCpp(text);
}

absl::StatusOr<std::unique_ptr<Document>> Document::ParseWithLibyaml(
    absl::string_view text) {
  std::unique_ptr<Document> doc(new Document());
  doc->Reserve(text);
  Builder builder(doc.get());
  Events events(text);
  for (;;) {
    absl::StatusOr<const yaml_event_t*> e = events.Next();
    if (!e.ok()) return e.status();
    if ((*e)->type == YAML_STREAM_END_EVENT) break;
    if (absl::Status st = builder.Add(**e); !st.ok()) return st;
  }
  return doc;
}

std::string Node::Scalar() const {
  if (!IsScalar()) return "";
  const Document::NodeData& n = doc_->nodes_[index_];
  return doc_->text_.substr(n.first, n.count);
}

std::vector<Node> Node::Children() const {
  std::vector<Node> out;
  if (!IsSequence() && !IsMap()) return out;
  const Document::NodeData& n = doc_->nodes_[index_];
  out.reserve(n.count);
  for (uint32_t i = 0; i < n.count; ++i) {
    out.push_back(Node(doc_, doc_->children_[n.first + i]));
  }
  return out;
}

std::vector<std::pair<Node, Node>> Node::Entries() const {
  std::vector<std::pair<Node, Node>> out;
  if (!IsMap()) return out;
  const std::vector<Node> children = Children();
  out.reserve(children.size() / 2);
  for (size_t i = 0; i + 1 < children.size(); i += 2) {
    out.emplace_back(children[i], children[i + 1]);
  }
  return out;
}

}  // namespace egress::policy::yaml
