#include "userspace/policy/names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace egress::policy {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_' || c == '.' || c == '@';
  });
}

absl::Status CheckName(absl::string_view name, absl::string_view noun) {
  if (ValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bad ", noun, " \"", name,
                   "\": use 1-64 letters, digits, '-', '_', '.' or '@'"));
}

}  // namespace egress::policy
