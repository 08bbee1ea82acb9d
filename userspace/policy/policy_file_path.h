// FieldPath: where a value sits in a policy file, as error messages name it:
// "spec.egress[3].to[0].ipBlock.cidr".
//
// A 100,000-rule file has about a million such places and, as a rule, no
// error at all, so a FieldPath is not text: it is one link of a chain on the
// stack (its parent, then a field name or a list index), written out by
// Text() only when a message needs it. Building the text of every path as the
// parser descended took half of the time it spent turning the tree into rules,
// all of it malloc and free.
//
// A FieldPath points at its parent and at its field name, which must outlive
// it: the parent is the caller's, the name a literal or a key of the YAML
// document. Field() and Item() of a temporary would leave a dangling parent,
// so they are not allowed; name each link that has children:
//   const FieldPath block = peer.Field("ipBlock");
//   ParseCidr(node, block.Field("cidr"));
#ifndef EGRESS_USERSPACE_POLICY_POLICY_FILE_PATH_H_
#define EGRESS_USERSPACE_POLICY_POLICY_FILE_PATH_H_

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

class FieldPath {
 public:
  // The document itself: "".
  FieldPath() = default;

  FieldPath(const FieldPath&) = delete;
  FieldPath& operator=(const FieldPath&) = delete;

  // Field `name` of this mapping: "a.b" + "c" = "a.b.c"; the document's
  // field "c" is "c".
  FieldPath Field(absl::string_view name) const& {
    return FieldPath(this, name, kNoIndex);
  }
  // Item `i` of this list: "a.b[3]".
  FieldPath Item(size_t i) const& { return FieldPath(this, {}, i); }
  FieldPath Field(absl::string_view name) const&& = delete;
  FieldPath Item(size_t i) const&& = delete;

  std::string Text() const {
    std::string text;
    text.reserve(32);  // a rule's ("spec.egressDeny[12345]") and most others
    AppendTo(&text);
    return text;
  }
  // Text() at the end of `out`.
  void AppendTo(std::string* out) const { Append(out, out->size()); }

 private:
  static constexpr size_t kNoIndex = ~size_t{0};

  FieldPath(const FieldPath* parent, absl::string_view name, size_t index)
      : parent_(parent), name_(name), index_(index) {}

  // The text starts at (*out)[start].
  void Append(std::string* out, size_t start) const {
    if (parent_ == nullptr) return;
    parent_->Append(out, start);
    if (index_ != kNoIndex) {
      absl::StrAppend(out, "[", index_, "]");
      return;
    }
    if (out->size() > start) out->push_back('.');
    out->append(name_.data(), name_.size());
  }

  const FieldPath* parent_ = nullptr;  // nullptr: the document
  absl::string_view name_;             // a field's name
  size_t index_ = kNoIndex;            // or a list item's index
};

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_POLICY_FILE_PATH_H_
