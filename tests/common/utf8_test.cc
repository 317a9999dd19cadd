#include "common/utf8.h"

#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(Utf8Test, FindsInvalidSequences) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("中文 ✓ 𝄞"));
  EXPECT_EQ(FindInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FindInvalidUtf8("\xc0\xaf"), 0u);          // overlong "/"
  EXPECT_EQ(FindInvalidUtf8("x\xed\xa0\x80"), 1u);     // surrogate
  EXPECT_EQ(FindInvalidUtf8("\xe4\xb8"), 0u);          // cut short
  EXPECT_EQ(FindInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
}

TEST(Utf8Test, LengthAndPrefix) {
  EXPECT_EQ(Utf8Length("中文ab"), 4u);
  EXPECT_EQ(Utf8Prefix("中文", 4), "中");
  EXPECT_EQ(Utf8Prefix("abc", 10), "abc");
}

TEST(Utf8Test, EscapeControlLeavesTextAndEscapesWhatDrivesATerminal) {
  EXPECT_EQ(EscapeControl("plain 问题 text"), "plain 问题 text");
  EXPECT_EQ(EscapeControl("a\x1b[2J\rb\x7f"), "a\\x1b[2J\\x0db\\x7f");
  EXPECT_EQ(EscapeControl("x\xc2\x9b"
                          "31m"),
            "x\\xc2\\x9b31m");  // C1 CSI
  EXPECT_EQ(EscapeControl("bad\xff\xc3"), "bad\\xff\\xc3");
  EXPECT_EQ(EscapeControl("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeControl("\xc2\xa0ok"), "\xc2\xa0ok");  // U+00A0 stays
}

}  // namespace
}  // namespace medeval

namespace medeval {
namespace {

TEST(Utf8Test, ReplacesEachInvalidByte) {
  size_t n = 0;
  EXPECT_EQ(ReplaceInvalidUtf8("ok", &n), "ok");
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(ReplaceInvalidUtf8("a\xE4\xB8<b\xFF", &n), "a\uFFFD\uFFFD<b\uFFFD");
  EXPECT_EQ(n, 3u);
  EXPECT_TRUE(IsValidUtf8(ReplaceInvalidUtf8("\xC0\xAF\xED\xA0\x80")));
}

TEST(Utf8Test, BlankTextIsWhatNoReaderSees) {
  EXPECT_TRUE(IsBlankText(""));
  EXPECT_TRUE(IsBlankText(" \t\r\n"));
  EXPECT_TRUE(IsBlankText("\u3000\u00a0\u2003\u200b\ufeff\u2028"));
  EXPECT_FALSE(IsBlankText(" A "));
  EXPECT_FALSE(IsBlankText("\u3000答"));
  EXPECT_FALSE(IsBlankText("\xFF"));
}

}  // namespace
}  // namespace medeval
