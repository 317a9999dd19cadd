#include "common/choice.h"

#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(ParseOptionsTest, OneOptionPerLine) {
  auto o = ParseOptions("题目：下列哪项正确\nA. 甲\nB. 乙\nC. 丙\n");
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0].letter, 'A');
  EXPECT_EQ(o[0].text, "甲");
  EXPECT_EQ(o[2].text, "丙");
}

TEST(ParseOptionsTest, InlineOptions) {
  auto o = ParseOptions(
      "关于他克莫司，叙述正确的是()\nA.宜进行治疗药物监测B.半衰期短C.主要经肝脏代谢D."
      "蛋白结合率高\n");
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[1].text, "半衰期短");
  EXPECT_EQ(o[3].text, "蛋白结合率高");
}

TEST(ParseOptionsTest, TakesTheLastRunAfterAWorkedExample) {
  auto o =
      ParseOptions("示例：\nA.旧一\nB.旧二\n答：<A>\n\n题目：新问题 A. 新一\nB. 新二\nC. 新三");
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0].text, "新一");
  EXPECT_EQ(QuestionStem("题目：新问题 A. 新一\nB. 新二"), "题目：新问题");
}

TEST(ParseOptionsTest, OtherSeparators) {
  auto o = ParseOptions("问\nA：一\nB、二\nC）三\nD 四");
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[3].text, "四");
}

TEST(ParseOptionsTest, IgnoresLettersInsideWords) {
  EXPECT_TRUE(ParseOptions("HbA1c 是糖化血红蛋白。DNA. 结构").empty());
}

}  // namespace
}  // namespace medeval
