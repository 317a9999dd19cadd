#include "common/choice.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/suite.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

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

TEST(ParseOptionsTest, ReadsTheChainToItsEndPastJ) {
  std::string q = "提问：\n以下哪些诊断应被优先考虑？\n";
  for (char c = 'A'; c <= 'L'; ++c) q += std::string(1, c) + ". 诊断" + std::string(1, c) + "\n";
  auto o = ParseOptions(q);
  ASSERT_EQ(o.size(), 12u);
  EXPECT_EQ(o[10].letter, 'K');
  EXPECT_EQ(o[11].text, "诊断L");
}

TEST(ParseOptionsTest, AnOptionLetterRunningIntoItsText) {
  // Legacy MedSafety writes some options without a separator.
  auto o = ParseOptions(
      "题目：\n最早的人体试验国际规范是:\nA 《赫尔辛基宣言》\nB 《悉尼宣言》\nC "
      "《日内瓦协议法》\nD《纽伦堡法典》\nE 《阿拉木图宣言》\n\n答: ");
  ASSERT_EQ(o.size(), 5u);
  EXPECT_EQ(o[3].text, "《纽伦堡法典》");
  EXPECT_EQ(o[4].text, "《阿拉木图宣言》");
  // Lines of prose that start with a letter are not options on their own.
  EXPECT_TRUE(ParseOptions("A型血患者。\nB超示胆囊结石。").empty());
}

// The legacy questions carry their options as a list beside the text: the
// text must give the same letters, to the end.
TEST(ParseOptionsTest, AgreesWithTheLegacyOptionLists) {
  const std::string root = testing::SharedMedbench("legacy/LLM");
  if (root.empty()) GTEST_SKIP() << "no MedBench questions beside the source tree";
  int checked = 0, wrong = 0;
  std::string first_wrong;
  for (const char* ds : {"Med-Exam", "DrugCA", "MedSafety", "DDx-basic", "DDx-advanced"}) {
    auto text = ReadFile(JoinPath(root, absl::StrCat(ds, "/", ds, "_test.jsonl")));
    ASSERT_TRUE(text.ok());
    for (absl::string_view line : SplitLines(*text)) {
      if (IsBlankLine(line)) continue;
      auto j = nlohmann::json::parse(line.begin(), line.end());
      if (!j["options"].is_array() || j["options"].empty()) continue;
      ++checked;
      std::string want;
      for (const auto& o : j["options"]) {
        std::string t = o.get<std::string>();
        size_t k = t.find_first_not_of("( ");
        if (k != std::string::npos) want += t[k];
      }
      std::string got;
      for (const ChoiceOption& o : ParseOptions(j["question"].get<std::string>())) got += o.letter;
      if (got != want) {
        ++wrong;
        if (first_wrong.empty()) first_wrong = absl::StrCat(ds, ": ", want, " read as ", got);
      }
    }
  }
  EXPECT_GT(checked, 1000);
  EXPECT_EQ(wrong, 0) << first_wrong << " (" << wrong << " of " << checked << ")";
}

}  // namespace
}  // namespace medeval
