#include "userspace/control/json_fields.h"

#include <limits>

namespace egress::control {

JsonFields::JsonFields(const nlohmann::json& object, std::string what)
    : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) Fail("is not a JSON object");
}

const nlohmann::json* JsonFields::Find(const char* name) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::Has(const char* name) const { return Find(name) != nullptr; }

void JsonFields::Fail(const std::string& message) {
  if (status_.ok()) {
    status_ = absl::InvalidArgumentError(absl::StrCat(what_, " ", message));
  }
}

void JsonFields::Require(const char* name) {
  if (!Has(name)) Fail(absl::StrCat("field '", name, "' is missing"));
}

void JsonFields::Check(const char* name, const absl::Status& status) {
  if (!status.ok()) {
    Fail(absl::StrCat("field '", name, "': ", status.message()));
  }
}

void JsonFields::String(const char* name, std::string* out) {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return;
  if (!v->is_string()) {
    Fail(absl::StrCat("field '", name, "' must be a string"));
    return;
  }
  *out = v->get<std::string>();
}

void JsonFields::Bool(const char* name, bool* out) {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return;
  if (!v->is_boolean()) {
    Fail(absl::StrCat("field '", name, "' must be true or false"));
    return;
  }
  *out = v->get<bool>();
}

void JsonFields::Uint(const char* name, uint64_t max, uint64_t* out) {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return;
  if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
    Fail(absl::StrCat("field '", name, "' must be a number from 0 to ", max));
    return;
  }
  *out = v->get<uint64_t>();
}

void JsonFields::Int(const char* name, int64_t* out) {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return;
  if (!v->is_number_integer() ||
      (v->is_number_unsigned() &&
       v->get<uint64_t>() >
           static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    Fail(absl::StrCat("field '", name, "' must be a whole number"));
    return;
  }
  *out = v->get<int64_t>();
}

void JsonFields::OptionalInt(const char* name, std::optional<int64_t>* out) {
  if (!Has(name)) return;
  int64_t v = 0;
  Int(name, &v);
  *out = v;
}

const nlohmann::json* JsonFields::Member(const char* name, bool required) {
  const nlohmann::json* v = Find(name);
  if (v == nullptr && required) Require(name);
  return v;
}

}  // namespace egress::control
