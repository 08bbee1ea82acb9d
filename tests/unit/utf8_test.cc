// FirstInvalidUtf8: the offset of the first byte that does not start a
// well-formed UTF-8 sequence, wherever it sits (the ASCII fast path reads
// eight bytes at a time).
#include "userspace/common/utf8.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace egress {
namespace {

// The definition, one byte at a time: a byte that starts no sequence, or a
// sequence cut short or with a bad continuation byte.
size_t Reference(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 == 0xe0) lo = 0xa0;
      if (b0 == 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 == 0xf0) lo = 0x90;
      if (b0 == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return i;
    }
    i += len;
  }
  return std::string::npos;
}

TEST(Utf8Test, KnownTexts) {
  EXPECT_EQ(FirstInvalidUtf8(""), absl::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii text, longer than eight"),
            absl::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"),
            absl::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("0123456789abcdef\xff"), 16u);
  EXPECT_EQ(FirstInvalidUtf8("01234567\xc3"), 8u);           // cut short
  EXPECT_EQ(FirstInvalidUtf8("0123456\xc3\xa9x\x80"), 10u);  // lone tail
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);               // overlong
  EXPECT_EQ(FirstInvalidUtf8("abc\xed\xa0\x80"), 3u);        // surrogate
  EXPECT_EQ(FirstInvalidUtf8("abcdefghij\xf4\x90\x80\x80"),
            10u);  // past U+10FFFF
}

// Random texts, mostly ASCII with UTF-8 and stray bytes at every offset.
TEST(Utf8Test, AgreesWithTheBytewiseDefinition) {
  std::mt19937 rng(8);
  const std::string pieces[] = {
      "a",    "abcdefgh", "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80",
      "\x80", "\xff",     "\xc3",     "\xe0\x80\x80", "\xed\xa0\x80",
      "\x7f", " "};
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(0, 12)(rng);
    for (int i = 0; i < n; ++i) {
      // ASCII most of the time, so that a bad byte lands past long runs.
      const int pick = std::uniform_int_distribution<int>(0, 29)(rng);
      text += pick < 12 ? pieces[pick] : pieces[1];
    }
    ASSERT_EQ(FirstInvalidUtf8(text), Reference(text)) << text;
  }
}

}  // namespace
}  // namespace egress
