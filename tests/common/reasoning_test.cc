#include "common/reasoning.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SplitReasoningTest, PlainTextIsKeptAsIs) {
  ReasoningSplit s = SplitReasoning("  <A>\n");
  EXPECT_EQ(s.answer, "  <A>\n");
  EXPECT_EQ(s.reasoning, "");
  EXPECT_THAT(s.flags, IsEmpty());
}

TEST(SplitReasoningTest, RemovesALeadingThinkBlock) {
  ReasoningSplit s = SplitReasoning("\n<think>\nlet me see\n</think>\n\nB. 因为……");
  EXPECT_EQ(s.answer, "B. 因为……");
  EXPECT_EQ(s.reasoning, "let me see");
  EXPECT_THAT(s.flags, ElementsAre(kFlagThinkBlock));
}

TEST(SplitReasoningTest, UnterminatedBlockIsSubmittedAsIsAndFlagged) {
  ReasoningSplit s = SplitReasoning("<think>still thinking when max_tokens hit");
  EXPECT_EQ(s.answer, "<think>still thinking when max_tokens hit");
  EXPECT_THAT(s.flags, ElementsAre(kFlagThinkUnterminated));
}

TEST(SplitReasoningTest, MissingOpeningTag) {
  ReasoningSplit s = SplitReasoning("reasoning here</think>\n<C>");
  EXPECT_EQ(s.answer, "<C>");
  EXPECT_EQ(s.reasoning, "reasoning here");
  EXPECT_THAT(s.flags, ElementsAre(kFlagThinkOpenMissing));
}

TEST(SplitReasoningTest, OnlyTheLeadingBlockIsRemoved) {
  ReasoningSplit s = SplitReasoning("<think>a</think>answer <think>b</think>");
  EXPECT_EQ(s.answer, "answer <think>b</think>");
  EXPECT_THAT(s.flags, ElementsAre(kFlagThinkBlock, kFlagThinkLeak));
}

}  // namespace
}  // namespace medeval
