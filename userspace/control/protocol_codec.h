// Building blocks shared by the request and response codecs (protocol.cc,
// protocol_responses.cc): enums and lists of nested objects.
#ifndef EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_
#define EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "userspace/control/json_fields.h"
#include "userspace/policy/vocabulary.h"

namespace egress::control::codec {

inline void ModeField(JsonFields& f, const char* name, policy::Mode* out) {
  f.Word<policy::Mode>(
      name, [](const std::string& w) { return policy::ParseMode(w); }, out);
}
inline void LoggingField(JsonFields& f, const char* name,
                         policy::LoggingLevel* out) {
  f.Word<policy::LoggingLevel>(
      name, [](const std::string& w) { return policy::ParseLoggingLevel(w); },
      out);
}
inline void SourceField(JsonFields& f, const char* name,
                        policy::TargetSource* out) {
  f.Word<policy::TargetSource>(
      name, [](const std::string& w) { return policy::ParseTargetSource(w); },
      out);
}

// A JSON array of strings into *out.
void StringList(JsonFields& f, const char* name, std::vector<std::string>* out);

// A JSON array of objects, each decoded by `decode(fields, &item)`.
template <typename T, typename Decode>
void ObjectList(JsonFields& f, const char* name, std::vector<T>* out,
                Decode decode) {
  const nlohmann::json* list = f.Member(name, /*required=*/false);
  if (list == nullptr || !f.ok()) return;
  if (!list->is_array()) {
    f.Fail(absl::StrCat("field '", name, "' must be a list"));
    return;
  }
  for (size_t i = 0; i < list->size() && f.ok(); ++i) {
    JsonFields item((*list)[i], absl::StrCat(name, "[", i, "]"));
    T value;
    decode(item, &value);
    if (!item.ok()) {
      f.Fail(std::string(item.status().message()));
      return;
    }
    out->push_back(std::move(value));
  }
}

}  // namespace egress::control::codec

#endif  // EGRESS_USERSPACE_CONTROL_PROTOCOL_CODEC_H_
