#include "sim/answer_model.h"

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "common/suite.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval::sim {
namespace {

TEST(DetectPromptFormatTest, SingleChoiceInBrackets) {
  PromptFormat f = DetectPromptFormat(
      "## 任务：请回答单项选择题，从问题选项中选出一个正确回答的序号，填写到<>中。\n"
      "## 题目：下列哪项正确\nA. 甲\nB. 乙\nC. 丙");
  EXPECT_EQ(f.choice, ChoiceKind::kSingle);
  EXPECT_TRUE(f.brackets);
  EXPECT_EQ(f.options.size(), 3u);
}

TEST(DetectPromptFormatTest, BareSingleLetter) {
  PromptFormat f = DetectPromptFormat(
      "请完成下列医疗安全单选题，只需要输出最适合的选项字母。示例输出：A\n## 问题\n问\nA. 一\nB. "
      "二\n");
  EXPECT_EQ(f.choice, ChoiceKind::kSingle);
  EXPECT_FALSE(f.brackets);
}

TEST(DetectPromptFormatTest, MultipleChoice) {
  PromptFormat f =
      DetectPromptFormat("回答下列多选题，需要输出所有答案的选项。示例输出：ABC\nA.一B.二C.三");
  EXPECT_EQ(f.choice, ChoiceKind::kMulti);
  EXPECT_EQ(f.multi_separator, "");
  PromptFormat g = DetectPromptFormat(
      "从问题选项中选出一个或多个正确回答的序号，填写到<>中，多个答案之间使用\",\"分隔。\nA. "
      "一\nB. 二");
  EXPECT_EQ(g.choice, ChoiceKind::kMulti);
  EXPECT_TRUE(g.brackets);
  EXPECT_EQ(g.multi_separator, ", ");
}

TEST(DetectPromptFormatTest, JsonAndFreeText) {
  PromptFormat f = DetectPromptFormat(R"(以json格式输出：```json{"主诉": "", "诊断": ""}```)");
  EXPECT_EQ(f.choice, ChoiceKind::kNone);
  EXPECT_TRUE(f.json);
  EXPECT_EQ(f.json_template, R"({"主诉": "", "诊断": ""})");
  EXPECT_FALSE(f.json_array);
  PromptFormat g = DetectPromptFormat("解释以下医学名词：抗原漂移");
  EXPECT_EQ(g.choice, ChoiceKind::kNone);
  EXPECT_FALSE(g.json);
}

TEST(DetectPromptFormatTest, JsonListsInWordsOrByExample) {
  // As MedDetect words it, and as MedDiffer shows it.
  PromptFormat a = DetectPromptFormat("最终结果必须以标准 JSON 数组格式返回，每个元素为一个对象");
  EXPECT_TRUE(a.json_array);
  PromptFormat b = DetectPromptFormat(
      "格式示例（请严格按照此格式输出json）：\n[{\n\"鉴别诊断1\":\"疾病名称\",\n\"诊断依据1\":\"..."
      "\"}]");
  EXPECT_TRUE(b.json_array);
  EXPECT_EQ(b.json_template, "{\n\"鉴别诊断1\":\"疾病名称\",\n\"诊断依据1\":\"...\"}");
  // "不定项" (any number of items) in a JSON prompt without options is no choice question.
  PromptFormat c = DetectPromptFormat(
      "错误类型的数目不定项，输出格式为：```json{\"错误类型1\": \"修改建议1\"}```");
  EXPECT_EQ(c.choice, ChoiceKind::kNone);
  EXPECT_TRUE(c.json);
  std::string answer =
      AnswerQuestion("m", "请输出json：[{\"类别\": [], \"边界框\": []}]", {}).content;
  EXPECT_TRUE(absl::StartsWith(answer, "[{\"类别\":")) << answer;
}

TEST(AnswerQuestionTest, FollowsTheRequestedFormat) {
  AnswerStyle style;
  const std::string single =
      "请回答单项选择题，答案放在<>里。\n题目：问\nA. 一\nB. 二\nC. 三\nD. 四";
  std::string a = AnswerQuestion("m", single, style).content;
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a.front(), '<');
  EXPECT_TRUE(a[1] >= 'A' && a[1] <= 'D');
  std::string multi =
      AnswerQuestion("m", "多选题，示例输出：ABC\nA.一B.二C.三D.四E.五", style).content;
  EXPECT_FALSE(multi.empty());
  for (char c : multi) EXPECT_TRUE(c >= 'A' && c <= 'E') << multi;
  std::string js = AnswerQuestion("m", R"(以json格式输出：```json{"主诉": ""}```)", style).content;
  EXPECT_TRUE(absl::StartsWith(js, "{\"主诉\":")) << js;
}

TEST(AnswerQuestionTest, ListsWithTheAskedSeparator) {
  const std::string q = "请推荐所有可能合适的就医科室，多个科室间请用顿号分隔。";
  EXPECT_EQ(DetectPromptFormat(q).list_separator, "、");
  std::string a = AnswerQuestion("m", q, {}).content;
  EXPECT_TRUE(absl::StrContains(a, "、")) << a;
  EXPECT_FALSE(absl::StrContains(a, "，")) << a;
}

TEST(AnswerQuestionTest, IsDeterministicPerModelQuestionSeed) {
  AnswerStyle s0, s1;
  s1.seed = 1;
  const std::string q = "解释：心房颤动";
  EXPECT_EQ(AnswerQuestion("m", q, s0).content, AnswerQuestion("m", q, s0).content);
  EXPECT_NE(AnswerQuestion("m", q, s0).content, AnswerQuestion("other", q, s0).content);
  EXPECT_NE(AnswerQuestion("m", q, s0).content, AnswerQuestion("m", q, s1).content);
}

TEST(AnswerQuestionTest, ReasoningStyles) {
  AnswerStyle think;
  think.think = true;
  SimAnswer a = AnswerQuestion("m", "q", think);
  EXPECT_TRUE(absl::StartsWith(a.content, "<think>\n")) << a.content;
  AnswerStyle field;
  field.reasoning_field = true;
  SimAnswer b = AnswerQuestion("m", "q", field);
  EXPECT_FALSE(absl::StrContains(b.content, "<think>"));
  EXPECT_FALSE(b.reasoning_content.empty());
}

TEST(AnswerQuestionTest, FormatViolations) {
  AnswerStyle always;
  always.format_violation_rate = 1.0;
  SimAnswer a = AnswerQuestion("m", "单选题，只输出选项字母。\nA. 一\nB. 二", always);
  EXPECT_TRUE(a.violates_format);
  EXPECT_GT(a.content.size(), 20u);
}

// The sample suite asks each MedExam/MedSafety question five times with the
// options shuffled: a consistent model picks the same option text each time.
TEST(AnswerQuestionTest, ConsistentUnderShuffledOptions) {
  auto suite = LoadSuite(testing::SamplesDir(), LoadOptions());
  ASSERT_TRUE(suite.ok()) << suite.status();
  int groups = 0;
  for (const Dataset& ds : suite->datasets) {
    if (ds.file.name != "MedExam" && ds.file.name != "MedSafety") continue;
    std::map<std::string, std::set<std::string>> chosen;  // stem -> option texts chosen
    for (size_t i = 0; i < ds.size(); ++i) {
      std::string q(ds.question(i));
      std::string a = AnswerQuestion("m", q, AnswerStyle()).content;
      char letter = a.size() == 3 ? a[1] : a[0];
      for (const auto& o : ParseOptions(q)) {
        if (o.letter == letter) chosen[QuestionStem(q)].insert(o.text);
      }
    }
    for (const auto& [stem, texts] : chosen) {
      EXPECT_EQ(texts.size(), 1u) << stem;
      ++groups;
    }
  }
  EXPECT_EQ(groups, 6);
}

TEST(AnswerQuestionTest, RealChoicePromptsAreRecognized) {
  std::string root = testing::SharedMedbench("v4/LLM");
  if (root.empty()) GTEST_SKIP() << "../shared/medbench is absent";
  auto suite = LoadSuite(root, LoadOptions());
  ASSERT_TRUE(suite.ok());
  std::map<std::string, ChoiceKind> want = {
      {"MedExam", ChoiceKind::kSingle},       {"MedSafety", ChoiceKind::kSingle},
      {"MedEthics", ChoiceKind::kSingle},     {"MedRxCheck_SCQ", ChoiceKind::kSingle},
      {"MedRxCheck_MSQ", ChoiceKind::kMulti}, {"DDx-advanced", ChoiceKind::kMulti},
      {"MedTerm", ChoiceKind::kNone}};
  for (const Dataset& ds : suite->datasets) {
    auto it = want.find(ds.file.name);
    if (it == want.end()) continue;
    for (size_t i = 0; i < ds.size(); ++i) {
      PromptFormat f = DetectPromptFormat(ds.question(i));
      EXPECT_EQ(f.choice, it->second) << ds.file.name << ":" << ds.line(i);
      if (it->second != ChoiceKind::kNone) {
        EXPECT_GE(f.options.size(), 2u) << ds.file.name << ":" << ds.line(i);
      }
    }
  }
}

}  // namespace
}  // namespace medeval::sim
