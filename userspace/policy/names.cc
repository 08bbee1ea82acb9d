#include "userspace/policy/names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace egress::policy {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_' || c == '.' || c == '@';
  });
}

std::optional<uint32_t> UidOfNumber(absl::string_view user) {
  if (user.empty() || user.size() > 10 ||
      !std::all_of(user.begin(), user.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return std::nullopt;
  }
  uint64_t uid = 0;
  for (char c : user) uid = uid * 10 + static_cast<uint64_t>(c - '0');
  if (uid >= 4294967295ULL) return std::nullopt;
  return static_cast<uint32_t>(uid);
}

std::string UserText(absl::string_view given, uint32_t uid) {
  if (UidOfNumber(given) == uid) return absl::StrCat("uid ", uid);
  return absl::StrCat("user ", given, " (uid ", uid, ")");
}

absl::Status CheckUser(absl::string_view user) {
  const bool digits =
      !user.empty() && std::all_of(user.begin(), user.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  if (digits ? UidOfNumber(user).has_value() : [&] {
        absl::string_view body = user;
        if (!body.empty() && body.back() == '$') body.remove_suffix(1);
        return !body.empty() && user.size() <= 32 && body.front() != '-' &&
               std::all_of(body.begin(), body.end(), [](char c) {
                 return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                        c == '_' || c == '-' || c == '.';
               });
      }()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "bad user \"", user,
      "\": use a uid (0-4294967294) or a user name (1-32 letters, digits, "
      "'_', '-' or '.', not starting with '-')"));
}

absl::Status CheckName(absl::string_view name, absl::string_view noun) {
  if (ValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bad ", noun, " \"", name,
                   "\": use 1-64 letters, digits, '-', '_', '.' or '@', not "
                   "starting with '.'"));
}

absl::Status CheckUnitName(absl::string_view unit) {
  const bool chars_ok =
      !unit.empty() && std::all_of(unit.begin(), unit.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
               absl::string_view("-_.:@\\").find(c) != absl::string_view::npos;
      });
  if (!chars_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad unit name \"", unit,
                     "\": use letters, digits, '-', '_', '.', ':', '@' or "
                     "'\\'"));
  }
  if (unit.front() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("bad unit name \"", unit,
                     "\": starts with '-', which systemctl reads as an "
                     "option"));
  }
  return absl::OkStatus();
}

}  // namespace egress::policy
