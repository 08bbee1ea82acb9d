#include "userspace/control/json_indented.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"
#include "userspace/control/json_view_simdjson.h"
#include "userspace/policy/rule_json.h"

namespace egress::control {
namespace {

using Member = std::pair<absl::string_view, SimdjsonView>;

// True if every number under `v` is an integer: the values Writer writes
// as the tree does.
bool OnlyIntegers(const SimdjsonView& v) {
  if (v.is_object()) {
    for (Member m : v.Members()) {
      if (!OnlyIntegers(m.second)) return false;
    }
    return true;
  }
  if (v.is_array()) {
    for (SimdjsonView item : v.Items()) {
      if (!OnlyIntegers(item)) return false;
    }
    return true;
  }
  return v.type_name() != std::string_view("number") || v.is_number_integer();
}

class Writer {
 public:
  // Hands `out` to `write` whenever it holds kPiece bytes or more.
  Writer(std::string* out, absl::FunctionRef<void(absl::string_view)> write)
      : out_(out), write_(write) {}

  // What is left in `out` after the last piece.
  void Flush() {
    if (!out_->empty()) write_(*out_);
    out_->clear();
  }

  // False for a value the tree would write its own way (a fraction).
  bool Value(const SimdjsonView& v, int indent,
             std::optional<absl::string_view> drop = std::nullopt) {
    if (v.is_object()) return Object(v, indent, drop);
    if (v.is_array()) return Array(v, indent);
    if (v.is_string()) {
      policy::AppendJsonString(out_, v.string());
    } else if (v.is_boolean()) {
      out_->append(v.boolean() ? "true" : "false");
    } else if (v.is_null()) {
      out_->append("null");
    } else if (v.is_number_unsigned()) {
      absl::StrAppend(out_, v.uint64());
    } else if (v.is_number_integer()) {
      absl::StrAppend(out_, v.int64());
    } else {
      return false;
    }
    return true;
  }

 private:
  bool Object(const SimdjsonView& v, int indent,
              std::optional<absl::string_view> drop) {
    std::vector<Member> members;
    for (Member m : v.Members()) {
      if (m.first != drop) members.push_back(m);
    }
    // The tree's order: by name; of a name given twice, the last value.
    std::stable_sort(
        members.begin(), members.end(),
        [](const Member& a, const Member& b) { return a.first < b.first; });
    if (members.empty()) {
      out_->append("{}");
      return true;
    }
    out_->append("{\n");
    bool first = true;
    for (size_t i = 0; i < members.size(); ++i) {
      if (i + 1 < members.size() && members[i + 1].first == members[i].first) {
        continue;
      }
      if (!first) out_->append(",\n");
      first = false;
      MaybeFlush();
      out_->append(indent + 2, ' ');
      policy::AppendJsonString(out_, members[i].first);
      out_->append(": ");
      if (!Value(members[i].second, indent + 2)) return false;
    }
    out_->push_back('\n');
    out_->append(indent, ' ');
    out_->push_back('}');
    return true;
  }

  bool Array(const SimdjsonView& v, int indent) {
    bool first = true;
    for (SimdjsonView item : v.Items()) {
      out_->append(first ? "[\n" : ",\n");
      first = false;
      MaybeFlush();
      out_->append(indent + 2, ' ');
      if (!Value(item, indent + 2)) return false;
    }
    if (first) {
      out_->append("[]");
      return true;
    }
    out_->push_back('\n');
    out_->append(indent, ' ');
    out_->push_back(']');
    return true;
  }

  void MaybeFlush() {
    if (out_->size() >= kPiece) Flush();
  }

  static constexpr size_t kPiece = 1 << 20;
  std::string* out_;
  absl::FunctionRef<void(absl::string_view)> write_;
};

}  // namespace

bool WriteIndentedJson(absl::string_view text, absl::string_view drop,
                       absl::FunctionRef<void(absl::string_view)> write) {
  simdjson::dom::parser parser;
  std::optional<SimdjsonView> root = ParseForView(parser, text);
  if (!root || !root->is_object() || !OnlyIntegers(*root)) return false;
  std::string piece;
  Writer w(&piece, write);
  w.Value(*root, 0, drop);  // true: only integers
  w.Flush();
  return true;
}

std::optional<std::string> IndentedJsonText(absl::string_view text,
                                            absl::string_view drop) {
  std::string out;
  if (!WriteIndentedJson(text, drop, [&](absl::string_view piece) {
        out.append(piece.data(), piece.size());
      })) {
    return std::nullopt;
  }
  return out;
}

}  // namespace egress::control
