// Reads the members of one JSON object into typed values without throwing,
// for decoding untrusted control messages. The first problem is kept and
// names the member: "request field 'last' must be an unsigned number".
#ifndef EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_
#define EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace egress::control {

class JsonFields {
 public:
  // `what` prefixes every error ("request", "response", "policies[2]").
  JsonFields(const nlohmann::json& object, std::string what);

  // Each reader leaves *out untouched when the member is absent or null and
  // records an error when it has the wrong type (or, for Required, is
  // missing). Numbers must fit the destination type.
  void String(const char* name, std::string* out);
  void Bool(const char* name, bool* out);
  void Uint(const char* name, uint64_t max, uint64_t* out);
  void Int(const char* name, int64_t* out);
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
  void OptionalInt(const char* name, std::optional<int64_t>* out);
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
  // Any member, for a nested decoder; nullptr (and an error when required)
  // if absent.
  const nlohmann::json* Member(const char* name, bool required);
  // Records `status` (when not ok) prefixed with the member's name.
  void Check(const char* name, const absl::Status& status);
  void Require(const char* name);

  bool Has(const char* name) const;
  const nlohmann::json& object() const { return object_; }
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  void Fail(const std::string& message);

 private:
  const nlohmann::json* Find(const char* name) const;
  const nlohmann::json& object_;
  std::string what_;
  absl::Status status_;
};

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_JSON_FIELDS_H_
