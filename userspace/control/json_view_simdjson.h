// A view (policy/json_view.h) of simdjson's DOM, so that egressd decodes a
// request without nlohmann::json's tree: an `apply` of 100,000 rules is a
// line of 15-20 MB, which nlohmann::json parses into a tree of a few million
// small allocations in about half a second; simdjson parses it in tens of
// milliseconds, into two flat buffers, and the same decoder
// (BasicJsonFields, RuleFromTree) reads it.
//
// The view answers as nlohmann::json would (json_view.h). Where simdjson's
// DOM cannot, ParseForView declines the text and the caller parses it with
// nlohmann::json: the slow way, for text nobody's egressctl writes.
#ifndef EGRESS_USERSPACE_CONTROL_JSON_VIEW_SIMDJSON_H_
#define EGRESS_USERSPACE_CONTROL_JSON_VIEW_SIMDJSON_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/string_view.h"
#include "simdjson.h"
#include "userspace/policy/json_view.h"

namespace egress::control {

class SimdjsonView {
 public:
  explicit SimdjsonView(simdjson::dom::element e) : e_(e) {}

  bool is_null() const { return Is(Type::NULL_VALUE); }
  bool is_object() const { return Is(Type::OBJECT); }
  bool is_array() const { return Is(Type::ARRAY); }
  bool is_string() const { return Is(Type::STRING); }
  bool is_boolean() const { return Is(Type::BOOL); }
  bool is_number_integer() const { return Is(Type::INT64) || Is(Type::UINT64); }
  // simdjson keeps a non-negative integer below 2^63 as INT64 (ParseForView
  // declines -0, the one negative literal that is not below 0).
  bool is_number_unsigned() const {
    return Is(Type::UINT64) ||
           (Is(Type::INT64) && e_.get_int64().value_unsafe() >= 0);
  }
  const char* type_name() const;

  absl::string_view string() const {
    std::string_view s = e_.get_string().value_unsafe();
    return absl::string_view(s.data(), s.size());
  }
  bool boolean() const { return e_.get_bool().value_unsafe(); }
  uint64_t uint64() const {
    return Is(Type::UINT64)
               ? e_.get_uint64().value_unsafe()
               : static_cast<uint64_t>(e_.get_int64().value_unsafe());
  }
  int64_t int64() const {
    return Is(Type::INT64)
               ? e_.get_int64().value_unsafe()
               : static_cast<int64_t>(e_.get_uint64().value_unsafe());
  }

  // The last member named `key`, as nlohmann::json keeps it.
  std::optional<SimdjsonView> Find(absl::string_view key) const;
  size_t size() const { return e_.get_array().value_unsafe().size(); }

  struct ItemOf {
    SimdjsonView operator()(simdjson::dom::array::iterator it) const {
      return SimdjsonView(*it);
    }
  };
  struct MemberOf {
    std::pair<absl::string_view, SimdjsonView> operator()(
        simdjson::dom::object::iterator it) const {
      return {absl::string_view(it.key_c_str(), it.key_length()),
              SimdjsonView(it.value())};
    }
  };
  policy::ProjectedRange<simdjson::dom::array::iterator, ItemOf> Items() const {
    simdjson::dom::array a = e_.get_array().value_unsafe();
    return {a.begin(), a.end()};
  }
  // In the text's order, a key given twice twice.
  policy::ProjectedRange<simdjson::dom::object::iterator, MemberOf> Members()
      const {
    simdjson::dom::object o = e_.get_object().value_unsafe();
    return {o.begin(), o.end()};
  }

 private:
  using Type = simdjson::dom::element_type;
  bool Is(Type t) const { return e_.type() == t; }

  simdjson::dom::element e_;
};

// The root of `text` parsed into `parser` (which owns the DOM), or nullopt
// when the view could not answer as nlohmann::json would: simdjson refuses
// the text (bad JSON, but also JSON nlohmann::json takes: integers past 64
// bits, nesting deeper than 1,024, a byte order mark), or the text may hold
// the number -0 (to nlohmann::json an integer that is not unsigned; to
// simdjson's DOM the same as 0).
std::optional<SimdjsonView> ParseForView(simdjson::dom::parser& parser,
                                         absl::string_view text);

// ParseForView of a whole request or answer line, read in place when the
// string's capacity leaves simdjson's padding (SIMDJSON_PADDING bytes, of any
// content) after the text, as a line grown by appends nearly always does;
// otherwise simdjson copies it into a padded buffer first. In place spares
// that copy: for an `apply` of 100,000 rules, 15 MB to allocate, fault in
// and copy.
std::optional<SimdjsonView> ParseLineForView(simdjson::dom::parser& parser,
                                             const std::string& line);

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_JSON_VIEW_SIMDJSON_H_
