// Read-only views of a parsed JSON value, so that one decoder reads more than
// one kind of tree: the rule reader (rule_json_tree.h) and the control
// protocol's member reader (control/json_fields.h) are templates over a view.
// NlohmannView (here) reads nlohmann::json; control/json_view_simdjson.h
// reads simdjson's DOM, which egressd parses a request of tens of MB into
// several times faster than nlohmann::json builds its tree.
//
// A view is a small value (a pointer or two), valid while its tree lives.
// Every view has the members of NlohmannView with the same meaning, which is
// nlohmann::json's where parsers differ:
//   - an integer literal without a minus sign is_number_unsigned();
//     is_number_integer() holds for every integer, never for 1.0;
//   - type_name() is nlohmann::json's: "object", "array", "string",
//     "number", "boolean", "null";
//   - Find(key) of an object that names `key` twice is the last value;
//   - Members() visits each (key, value) of an object, in an order of the
//     view's choosing: a caller that reports one of them (an unknown field)
//     picks the smallest key, and of a key given twice takes the last
//     value (nlohmann::json keeps that one).
// Reading a value as a type it does not have (string() of a number) is a
// bug of the caller, as it is with nlohmann::json.
#ifndef EGRESS_USERSPACE_POLICY_JSON_VIEW_H_
#define EGRESS_USERSPACE_POLICY_JSON_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace egress::policy {

// The iterators of a tree's container, each position turned into a value by
// `Project` (a view of an element, a member): what a view's Items() and
// Members() return, for range-for.
template <typename It, typename Project>
class ProjectedRange {
 public:
  class Iterator {
   public:
    explicit Iterator(It it) : it_(it) {}
    auto operator*() const { return Project()(it_); }
    Iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return it_ != other.it_; }

   private:
    It it_;
  };
  ProjectedRange(It begin, It end) : begin_(begin), end_(end) {}
  Iterator begin() const { return Iterator(begin_); }
  Iterator end() const { return Iterator(end_); }

 private:
  It begin_, end_;
};

class NlohmannView {
 public:
  // Implicit: a tree is read wherever a view is (JsonFields(j, "request")).
  NlohmannView(const nlohmann::json& j) : j_(&j) {}  // NOLINT

  bool is_null() const { return j_->is_null(); }
  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }
  bool is_boolean() const { return j_->is_boolean(); }
  bool is_number_integer() const { return j_->is_number_integer(); }
  bool is_number_unsigned() const { return j_->is_number_unsigned(); }
  const char* type_name() const { return j_->type_name(); }

  absl::string_view string() const {
    return j_->get_ref<const nlohmann::json::string_t&>();
  }
  bool boolean() const { return j_->get<bool>(); }
  // An integer as the type asked for (static_cast, as nlohmann::json's get).
  uint64_t uint64() const { return j_->get<uint64_t>(); }
  int64_t int64() const { return j_->get<int64_t>(); }

  // An object's member (null ones too); nullopt if absent or not an object.
  std::optional<NlohmannView> Find(absl::string_view key) const {
    if (!j_->is_object()) return std::nullopt;
    auto it = j_->find(std::string_view(key.data(), key.size()));
    if (it == j_->end()) return std::nullopt;
    return NlohmannView(*it);
  }
  // An array's length.
  size_t size() const { return j_->size(); }

  struct ItemOf {
    NlohmannView operator()(nlohmann::json::const_iterator it) const {
      return NlohmannView(*it);
    }
  };
  struct MemberOf {
    std::pair<absl::string_view, NlohmannView> operator()(
        nlohmann::json::const_iterator it) const {
      return {it.key(), NlohmannView(it.value())};
    }
  };
  // An array's elements, in order.
  ProjectedRange<nlohmann::json::const_iterator, ItemOf> Items() const {
    return {j_->cbegin(), j_->cend()};
  }
  // An object's members (sorted by key, here).
  ProjectedRange<nlohmann::json::const_iterator, MemberOf> Members() const {
    return {j_->cbegin(), j_->cend()};
  }

  const nlohmann::json& json() const { return *j_; }

 private:
  const nlohmann::json* j_;
};

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_JSON_VIEW_H_
