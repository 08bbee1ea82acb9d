// Enums spelled as words: one table per enum gives both directions (parse
// and print) and the list of choices for error messages, so a word is
// written down once.
#ifndef EGRESS_USERSPACE_POLICY_WORD_TABLE_H_
#define EGRESS_USERSPACE_POLICY_WORD_TABLE_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace egress::policy {

template <typename T>
struct WordOf {
  T value;
  absl::string_view word;
};

// The value spelled exactly `word`, or nullopt.
template <typename T, size_t N>
std::optional<T> ValueOf(const WordOf<T> (&table)[N], absl::string_view word) {
  for (const WordOf<T>& e : table) {
    if (e.word == word) return e.value;
  }
  return std::nullopt;
}

// The word of `value`; for a value not in the table, that of the row
// `fallback` (the safe reading: "enforce", "denied").
template <typename T, size_t N>
std::string WordFor(const WordOf<T> (&table)[N], T value, size_t fallback = 0) {
  for (const WordOf<T>& e : table) {
    if (e.value == value) return std::string(e.word);
  }
  return std::string(table[fallback].word);
}

// "a, b or c".
template <typename T, size_t N>
std::string Choices(const WordOf<T> (&table)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) absl::StrAppend(&out, i + 1 == N ? " or " : ", ");
    absl::StrAppend(&out, table[i].word);
  }
  return out;
}

// ValueOf, or InvalidArgument "unknown NOUN 'WORD': use CHOICES".
template <typename T, size_t N>
absl::StatusOr<T> ParseWordIn(const WordOf<T> (&table)[N],
                              absl::string_view noun, absl::string_view word) {
  if (std::optional<T> v = ValueOf(table, word)) return *v;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", noun, " '", word, "': use ", Choices(table)));
}

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_WORD_TABLE_H_
