#include "audit/answer_reading.h"

#include "gtest/gtest.h"

namespace medeval {
namespace {

const std::vector<ChoiceOption> kFive = {
    {'A', "一"}, {'B', "二"}, {'C', "三"}, {'D', "四"}, {'E', "五"}};

FormatRule Rule(AnswerFormat f) {
  FormatRule r;
  r.format = f;
  return r;
}

std::string Read(absl::string_view answer, AnswerFormat f = AnswerFormat::kLetterInBrackets) {
  Reading r = ReadChoice(Rule(f), answer, kFive);
  return r.letters.empty() ? "unreadable: " + r.why : r.letters;
}

TEST(ReadChoiceTest, TheFinalWellFormedAnswerWins) {
  EXPECT_EQ(Read("<B>"), "B");
  EXPECT_EQ(Read("< B >"), "B");
  EXPECT_EQ(Read("B."), "B");
  EXPECT_EQ(Read("C", AnswerFormat::kLetter), "C");
  // A rationale that mentions other letters, then the answer in the asked form.
  EXPECT_EQ(Read("患者B超提示胆囊结石，（选项A）不符合，D也不对。\n\n<C>"), "C");
  EXPECT_EQ(Read("分析：A项错误，B项错误。\n答：<C>"), "C");
  EXPECT_EQ(Read("分析：A项错误。\n**答案：E**"), "E");
  EXPECT_EQ(Read("<think>A还是B？</think>\n<D>"), "D");
  // Prose: one distinct letter standing alone; "B超" is a word, not an option.
  EXPECT_EQ(Read("答案是C，因为C选项最符合。"), "C");
  EXPECT_EQ(Read("B超显示异常，应选C，理由如上"), "C");
  EXPECT_EQ(Read("A或B都有可能"), "unreadable: names several options (A, B) and no final answer");
  EXPECT_EQ(Read("<>"), "unreadable: names no option");
  EXPECT_EQ(Read("F"), "unreadable: names no option");
  // Nothing is read from reasoning that was cut off.
  EXPECT_EQ(Read("<think>先看A，再看<B>"),
            "unreadable: the reasoning was cut off before an answer");
  // Several letters where several are asked for, in order of the options.
  EXPECT_EQ(Read("<C, A>", AnswerFormat::kLettersInBracketsComma), "AC");
  EXPECT_EQ(Read("分析……\n答案：ACD", AnswerFormat::kLetters), "ACD");
}

TEST(TrimSpaceTest, UnicodeSpaces) {
  EXPECT_EQ(TrimSpace("\u3000 \t<A>\u00a0\u2003\n"), "<A>");
  EXPECT_EQ(TrimSpace("\u3000\u3000"), "");
  EXPECT_EQ(TrimSpace("\xEF\xBB\xBF"), "");
  EXPECT_EQ(TrimSpace("甲"), "甲");
}

TEST(UntaggedReasoningTest, ThinkingAloudIsFlaggedAnswersAreNot) {
  EXPECT_FALSE(UntaggedReasoning("好的，用户问的是定义，我需要先回忆标准，让我想想……").empty());
  EXPECT_FALSE(
      UntaggedReasoning("Okay, let me see. The user asks about it. I need to recall.").empty());
  EXPECT_FALSE(UntaggedReasoning("嗯，用户给了一道题，我需要……").empty());
  // Four markers without an opener.
  EXPECT_FALSE(
      UntaggedReasoning("题目要求解释名词。用户想知道定义，我需要说明，让我先列出要点。").empty());
  // Answers that open the same way but speak to the reader.
  EXPECT_EQ(UntaggedReasoning("首先，应当保持镇静，拨打急救电话；其次，让患者平卧。"), "");
  EXPECT_EQ(UntaggedReasoning("好的，以下是门诊病历：\n主诉：咳嗽3天。"), "");
  EXPECT_EQ(UntaggedReasoning("<think>用户问……让我想想</think>答案"), "");  // a tagged leak
}

TEST(CutOffByTextTest, EndsMidSentence) {
  const std::string sentence =
      "冠心病临床上常分为慢性冠脉疾病和急性冠状动脉综合征两大类，前者包括稳定型心绞痛、"
      "缺血性心肌病等，后者包括不稳定型心绞痛和心肌梗死";
  const std::string para =
      "冠心病是冠状动脉粥样硬化引起管腔狭窄或闭塞，导致心肌缺血缺氧或坏死而引起的心脏病，"
      "是常见的心血管疾病。\n";
  EXPECT_EQ(CutOffByText(para + sentence + "。"), "");
  EXPECT_FALSE(CutOffByText(para + sentence + "，").empty());
  EXPECT_FALSE(CutOffByText(para + sentence).empty());
  EXPECT_FALSE(CutOffByText("<think>让我想想").empty());
  EXPECT_FALSE(CutOffByText("```json\n{\"诊断\": \"冠心病\"").empty());
  EXPECT_FALSE(CutOffByText("{\"诊断\": \"冠心病\", \"治疗方案\": \"1. 抗血小板").empty());
  // Legitimate endings: a list item without a full stop, a short answer, JSON.
  EXPECT_EQ(CutOffByText(para + sentence + "。\n4. 定期复查血脂、血糖"), "");
  EXPECT_EQ(CutOffByText("消化内科、普外科"), "");
  EXPECT_EQ(CutOffByText("{\"诊断\": \"冠心病\"}"), "");
  EXPECT_EQ(CutOffByText("<C>"), "");
}

}  // namespace
}  // namespace medeval
