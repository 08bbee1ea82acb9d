#include "userspace/control/json_view_simdjson.h"

namespace egress::control {
namespace {

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// A conservative look: "-0" where a value may start, not followed by a
// fraction or an exponent. A string that holds such text ("a,-0") only
// costs the slower parse.
bool MayHoldNegativeZero(absl::string_view text) {
  for (size_t at = text.find("-0"); at != absl::string_view::npos;
       at = text.find("-0", at + 2)) {
    const size_t after = at + 2;
    if (after < text.size() &&
        (text[after] == '.' || text[after] == 'e' || text[after] == 'E')) {
      continue;
    }
    size_t before = at;
    while (before > 0 && IsJsonSpace(text[before - 1])) --before;
    if (before == 0 || text[before - 1] == ':' || text[before - 1] == ',' ||
        text[before - 1] == '[') {
      return true;
    }
  }
  return false;
}

}  // namespace

const char* SimdjsonView::type_name() const {
  switch (e_.type()) {
    case Type::OBJECT:
      return "object";
    case Type::ARRAY:
      return "array";
    case Type::STRING:
      return "string";
    case Type::INT64:
    case Type::UINT64:
    case Type::DOUBLE:
      return "number";
    case Type::BOOL:
      return "boolean";
    case Type::NULL_VALUE:
      return "null";
  }
  return "null";
}

std::optional<SimdjsonView> SimdjsonView::Find(absl::string_view key) const {
  if (!is_object()) return std::nullopt;
  const std::string_view wanted(key.data(), key.size());
  // A copy: a reference into get_object()'s result would dangle.
  const simdjson::dom::object object = e_.get_object().value_unsafe();
  std::optional<SimdjsonView> found;
  for (const simdjson::dom::key_value_pair member : object) {
    if (member.key == wanted) found = SimdjsonView(member.value);
  }
  return found;
}

namespace {

std::optional<SimdjsonView> Parse(simdjson::dom::parser& parser,
                                  absl::string_view text, bool padded) {
  if (MayHoldNegativeZero(text)) return std::nullopt;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size(), /*realloc_if_needed=*/!padded)
          .get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return SimdjsonView(root);
}

}  // namespace

std::optional<SimdjsonView> ParseForView(simdjson::dom::parser& parser,
                                         absl::string_view text) {
  return Parse(parser, text, /*padded=*/false);
}

std::optional<SimdjsonView> ParseLineForView(simdjson::dom::parser& parser,
                                             const std::string& line) {
  return Parse(parser, line,
               line.capacity() - line.size() >= simdjson::SIMDJSON_PADDING);
}

}  // namespace egress::control
