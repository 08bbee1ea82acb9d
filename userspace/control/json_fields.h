// Reads the members of one JSON object into typed values without throwing,
// for decoding untrusted control messages. The first problem is kept and
// names the member: "request field 'last' must be an unsigned number".
//
// A template over the tree's view (policy/json_view.h), so that one reader
// (and every decoder written on it, protocol.cc) serves nlohmann::json
// (JsonFields) and simdjson's DOM (json_view_simdjson.h) alike.
#ifndef EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_
#define EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "userspace/policy/json_view.h"

namespace egress::control {

template <typename View>
class BasicJsonFields {
 public:
  using ViewType = View;

  // `what` prefixes every error ("request", "response", "policies[2]").
  BasicJsonFields(View object, std::string what)
      : object_(object), what_(std::move(what)) {
    if (!object_.is_object()) Fail("is not a JSON object");
  }

  // Each reader leaves *out untouched when the member is absent or null and
  // records an error when it has the wrong type (or, for Required, is
  // missing). Numbers must fit the destination type.
  void String(const char* name, std::string* out) {
    std::optional<View> v = Find(name);
    if (!v) return;
    if (!v->is_string()) {
      Fail(absl::StrCat("field '", name, "' must be a string"));
      return;
    }
    *out = std::string(v->string());
  }
  void Bool(const char* name, bool* out) {
    std::optional<View> v = Find(name);
    if (!v) return;
    if (!v->is_boolean()) {
      Fail(absl::StrCat("field '", name, "' must be true or false"));
      return;
    }
    *out = v->boolean();
  }
  void Uint(const char* name, uint64_t max, uint64_t* out) {
    std::optional<View> v = Find(name);
    if (!v) return;
    if (!v->is_number_unsigned() || v->uint64() > max) {
      Fail(absl::StrCat("field '", name, "' must be a number from 0 to ", max));
      return;
    }
    *out = v->uint64();
  }
  void Int(const char* name, int64_t* out) {
    std::optional<View> v = Find(name);
    if (!v) return;
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() &&
         v->uint64() >
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      Fail(absl::StrCat("field '", name, "' must be a whole number"));
      return;
    }
    *out = v->int64();
  }
  template <typename T>
  void Uint(const char* name, T* out) {
    uint64_t v = *out;
    Uint(name, static_cast<uint64_t>(static_cast<T>(~T{0})), &v);
    *out = static_cast<T>(v);
  }
  template <typename T>
  void OptionalUint(const char* name, std::optional<T>* out) {
    if (!Has(name)) return;
    T v{};
    Uint(name, &v);
    *out = v;
  }
  void OptionalInt(const char* name, std::optional<int64_t>* out) {
    if (!Has(name)) return;
    int64_t v = 0;
    Int(name, &v);
    *out = v;
  }
  // A string member turned into a value by `parse` (its error is prefixed
  // with the member's name).
  template <typename T>
  void Word(const char* name,
            const std::function<absl::StatusOr<T>(const std::string&)>& parse,
            T* out) {
    std::string word;
    if (!Has(name)) return;
    String(name, &word);
    if (!ok()) return;
    absl::StatusOr<T> v = parse(word);
    if (!v.ok()) {
      Fail(absl::StrCat("field '", name, "': ", v.status().message()));
      return;
    }
    *out = *std::move(v);
  }
  // Any member, for a nested decoder; nullopt (and an error when required)
  // if absent.
  std::optional<View> Member(const char* name, bool required) {
    std::optional<View> v = Find(name);
    if (!v && required) Require(name);
    return v;
  }
  // Records `status` (when not ok) prefixed with the member's name.
  void Check(const char* name, const absl::Status& status) {
    if (!status.ok()) {
      Fail(absl::StrCat("field '", name, "': ", status.message()));
    }
  }
  void Require(const char* name) {
    if (!Has(name)) Fail(absl::StrCat("field '", name, "' is missing"));
  }

  bool Has(const char* name) const { return Find(name).has_value(); }
  View object() const { return object_; }
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  void Fail(const std::string& message) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(what_, " ", message));
    }
  }

 private:
  // A member that is there and not null.
  std::optional<View> Find(const char* name) const {
    std::optional<View> v = object_.Find(name);
    if (v && v->is_null()) return std::nullopt;
    return v;
  }

  View object_;
  std::string what_;
  absl::Status status_;
};

// Over nlohmann::json: responses, the state file, DecodeRequest.
using JsonFields = BasicJsonFields<policy::NlohmannView>;

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_
