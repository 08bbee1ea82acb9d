// Building blocks shared by the request and response codecs (protocol.cc,
// protocol_responses.cc): enums and lists of nested objects. Templates over
// the member reader (`Fields`, a BasicJsonFields of json_fields.h).
#ifndef EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_
#define EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/control/json_fields.h"
#include "userspace/policy/vocabulary.h"

namespace egress::control::codec {

template <typename Fields>
void ModeField(Fields& f, const char* name, policy::Mode* out) {
  f.template Word<policy::Mode>(
      name, [](const std::string& w) { return policy::ParseMode(w); }, out);
}
template <typename Fields>
void LoggingField(Fields& f, const char* name, policy::LoggingLevel* out) {
  f.template Word<policy::LoggingLevel>(
      name, [](const std::string& w) { return policy::ParseLoggingLevel(w); },
      out);
}
template <typename Fields>
void SourceField(Fields& f, const char* name, policy::TargetSource* out) {
  f.template Word<policy::TargetSource>(
      name, [](const std::string& w) { return policy::ParseTargetSource(w); },
      out);
}

// A JSON array of strings into *out.
template <typename Fields>
void StringList(Fields& f, const char* name, std::vector<std::string>* out) {
  std::optional<typename Fields::ViewType> list =
      f.Member(name, /*required=*/false);
  if (!list || !f.ok()) return;
  if (!list->is_array()) {
    f.Fail(absl::StrCat("field '", name, "' must be a list of strings"));
    return;
  }
  for (const auto s : list->Items()) {
    if (!s.is_string()) {
      f.Fail(absl::StrCat("field '", name, "' must be a list of strings"));
      return;
    }
    out->push_back(std::string(s.string()));
  }
}

// A JSON object whose members are strings into *out.
template <typename Fields>
void StringMap(Fields& f, const char* name,
               std::map<std::string, std::string>* out) {
  std::optional<typename Fields::ViewType> object =
      f.Member(name, /*required=*/false);
  if (!object || !f.ok()) return;
  if (!object->is_object()) {
    f.Fail(absl::StrCat("field '", name, "' must be an object of strings"));
    return;
  }
  for (const auto& [key, value] : object->Members()) {
    if (!value.is_string()) {
      f.Fail(absl::StrCat("field '", name, "' must be an object of strings"));
      return;
    }
    (*out)[std::string(key)] = std::string(value.string());
  }
}

// A JSON array of objects, each decoded by `decode(fields, &item)`.
template <typename Fields, typename T, typename Decode>
void ObjectList(Fields& f, const char* name, std::vector<T>* out,
                Decode decode) {
  std::optional<typename Fields::ViewType> list =
      f.Member(name, /*required=*/false);
  if (!list || !f.ok()) return;
  if (!list->is_array()) {
    f.Fail(absl::StrCat("field '", name, "' must be a list"));
    return;
  }
  size_t i = 0;
  for (const auto element : list->Items()) {
    Fields item(element, absl::StrCat(name, "[", i, "]"));
    T value;
    decode(item, &value);
    if (!item.ok()) {
      f.Fail(std::string(item.status().message()));
      return;
    }
    out->push_back(std::move(value));
    ++i;
  }
}

}  // namespace egress::control::codec

#endif  // EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_
