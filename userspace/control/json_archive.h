// One member list per struct, written and read by the same code. A struct's
// `Fields(io, value)` names each member once; JsonWriter turns the struct
// into a JSON object and JsonReader (over JsonFields: typed, never throws)
// fills it back, so a member cannot be renamed on one side only.
//
//   template <typename Io>
//   void Fields(Io& io, Member<CgroupRef, Io>& c) {
//     io.Members("path", c.path, "id", c.id);
//   }
//
// Values: strings, bools, numbers, the vocabulary enums (by name), rules
// (policy::RuleToJson), std::optional (absent when empty), lists of any of
// these, string-to-string maps (an object) and nested structs that have a
// Fields() of their own.
#ifndef EGRESS_USERSPACE_CONTROL_JSON_ARCHIVE_H_
#define EGRESS_USERSPACE_CONTROL_JSON_ARCHIVE_H_

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "userspace/control/json_fields.h"
#include "userspace/control/protocol_codec.h"
#include "userspace/policy/json_view.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/rule_json_tree.h"
#include "userspace/policy/vocabulary.h"

namespace egress::control {

// The struct as a Fields() function sees it: const when writing.
template <typename T, typename Io>
using Member = std::conditional_t<Io::kWrites, const T, T>;

namespace archive_internal {
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
// A nested struct, written through its own Fields().
template <typename T>
inline constexpr bool kIsObject =
    std::is_class_v<T> && !std::is_same_v<T, std::string> &&
    !std::is_same_v<T, policy::Rule> && !IsVector<T>::value &&
    !IsOptional<T>::value;
}  // namespace archive_internal

class JsonWriter {
 public:
  static constexpr bool kWrites = true;

  template <typename T>
  void Field(const char* name, const T& value) {
    if constexpr (archive_internal::IsOptional<T>::value) {
      if (value) out_[name] = Value(*value);
    } else {
      out_[name] = Value(value);
    }
  }
  // Field() of each (name, member) pair in turn.
  template <typename T, typename... Rest>
  void Members(const char* name, const T& value, const Rest&... rest) {
    Field(name, value);
    if constexpr (sizeof...(rest) > 0) Members(rest...);
  }
  // Written only when `when` holds (an empty or default member left out);
  // read whenever present.
  template <typename T>
  void FieldIf(bool when, const char* name, const T& value) {
    if (when) Field(name, value);
  }
  template <typename T>
  void Required(const char* name, const T& value) {
    Field(name, value);
  }
  // A member only writers emit (a flag for readers of the JSON).
  void Constant(const char* name, const nlohmann::json& value) {
    out_[name] = value;
  }
  // The rule's own members, beside the struct's other members.
  void Inline(const policy::Rule& rule,
              std::initializer_list<const char*> /*other_members*/) {
    out_.update(policy::RuleToJson(rule));
  }

  nlohmann::json Take() { return std::move(out_); }

  template <typename T>
  static nlohmann::json Write(const T& value) {
    JsonWriter w;
    Fields(w, value);
    return w.Take();
  }

 private:
  static nlohmann::json Value(policy::Mode v) { return policy::ModeName(v); }
  static nlohmann::json Value(policy::LoggingLevel v) {
    return policy::LoggingLevelName(v);
  }
  static nlohmann::json Value(policy::TargetSource v) {
    return policy::TargetSourceName(v);
  }
  static nlohmann::json Value(const policy::Rule& r) {
    return policy::RuleToJson(r);
  }
  static nlohmann::json Value(const std::map<std::string, std::string>& m) {
    return m;
  }
  template <typename T>
  static nlohmann::json Value(const T& v) {
    if constexpr (archive_internal::IsVector<T>::value) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& item : v) list.push_back(Value(item));
      return list;
    } else if constexpr (archive_internal::kIsObject<T>) {
      return Write(v);
    } else {
      return v;
    }
  }

  nlohmann::json out_ = nlohmann::json::object();
};

// Reads through a BasicJsonFields (`F`) over any view (policy/json_view.h):
// JsonReader over nlohmann::json, or simdjson's DOM (egressctl's decoding of
// a reply, DecodeResponseDom), with the same results and errors.
template <typename F>
class BasicJsonReader {
 public:
  static constexpr bool kWrites = false;

  explicit BasicJsonReader(F& fields) : f_(fields) {}

  void Field(const char* name, std::string& v) { f_.String(name, &v); }
  void Field(const char* name, bool& v) { f_.Bool(name, &v); }
  void Field(const char* name, int64_t& v) { f_.Int(name, &v); }
  void Field(const char* name, policy::Mode& v) {
    codec::ModeField(f_, name, &v);
  }
  void Field(const char* name, policy::LoggingLevel& v) {
    codec::LoggingField(f_, name, &v);
  }
  void Field(const char* name, policy::TargetSource& v) {
    codec::SourceField(f_, name, &v);
  }
  void Field(const char* name, std::vector<std::string>& v) {
    codec::StringList(f_, name, &v);
  }
  void Field(const char* name, std::map<std::string, std::string>& v) {
    codec::StringMap(f_, name, &v);
  }
  void Field(const char* name, std::vector<policy::Rule>& rules) {
    std::optional<typename F::ViewType> list =
        f_.Member(name, /*required=*/false);
    if (!list || !f_.ok()) return;
    if (!list->is_array()) {
      f_.Fail(absl::StrCat("field '", name, "' must be a list"));
      return;
    }
    size_t i = 0;
    for (const auto item : list->Items()) {
      absl::StatusOr<policy::Rule> rule = policy::RuleFromTree(item);
      if (!rule.ok()) {
        f_.Fail(absl::StrCat(name, "[", i, "]: ", rule.status().message()));
        return;
      }
      rules.push_back(*std::move(rule));
      ++i;
    }
  }
  template <typename T>
  void Field(const char* name, T& v) {
    if constexpr (std::is_unsigned_v<T>) {
      f_.Uint(name, &v);
    } else if constexpr (archive_internal::IsOptional<T>::value) {
      if (!f_.Has(name)) return;
      typename T::value_type value{};
      Field(name, value);
      v = std::move(value);
    } else if constexpr (archive_internal::IsVector<T>::value) {
      codec::ObjectList(f_, name, &v,
                        [](F& item, auto* out) { Read(item, out); });
    } else {
      static_assert(archive_internal::kIsObject<T>, "no reader for this type");
      std::optional<typename F::ViewType> member =
          f_.Member(name, /*required=*/false);
      if (!member || !f_.ok()) return;
      F nested(*member, name);
      Read(nested, &v);
      if (!nested.ok()) f_.Fail(std::string(nested.status().message()));
    }
  }
  template <typename T, typename... Rest>
  void Members(const char* name, T& value, Rest&... rest) {
    Field(name, value);
    if constexpr (sizeof...(rest) > 0) Members(rest...);
  }
  template <typename T>
  void FieldIf(bool, const char* name, T& value) {
    Field(name, value);
  }
  template <typename T>
  void Required(const char* name, T& value) {
    f_.Require(name);
    Field(name, value);
  }
  void Constant(const char*, const nlohmann::json&) {}
  // The rule from every member but `other_members`.
  void Inline(policy::Rule& rule,
              std::initializer_list<const char*> other_members) {
    // Not an object (the first error, kept): nothing to read, and erase()
    // of another type throws.
    if (!f_.ok()) return;
    absl::StatusOr<policy::Rule> parsed;
    if constexpr (std::is_same_v<typename F::ViewType, policy::NlohmannView>) {
      nlohmann::json bare = f_.object().json();
      for (const char* name : other_members) bare.erase(name);
      parsed = policy::RuleFromJson(bare);
    } else {
      // The same members read in place, `other_members` passed over.
      parsed = policy::RuleFromTree(f_.object(), other_members);
    }
    if (!parsed.ok()) {
      f_.Fail(std::string(parsed.status().message()));
      return;
    }
    rule = *std::move(parsed);
  }

  // The members of `fields` into *out; problems are left in `fields`.
  template <typename T>
  static void Read(F& fields, T* out) {
    BasicJsonReader r(fields);
    Fields(r, *out);
  }

  F& fields() { return f_; }

 private:
  F& f_;
};

// Over nlohmann::json: responses, the state file.
using JsonReader = BasicJsonReader<JsonFields>;

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_JSON_ARCHIVE_H_
