#include "audit/format_rules.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

FormatRule Rule(Track t, const std::string& dataset) { return RuleFor(t, dataset, ""); }

const std::vector<ChoiceOption> kFive = {
    {'A', "一"}, {'B', "二"}, {'C', "三"}, {'D', "四"}, {'E', "五"}};

TEST(FormatRulesTest, TheTableKnowsTheTracks) {
  EXPECT_EQ(Rule(Track::kV4Llm, "MedSafety").format, AnswerFormat::kLetter);
  EXPECT_EQ(Rule(Track::kLegacyLlm, "MedSafety").format, AnswerFormat::kLetterInBrackets);
  EXPECT_EQ(Rule(Track::kV4Llm, "MedExam").format, AnswerFormat::kLetterInBrackets);
  EXPECT_EQ(Rule(Track::kV4Llm, "MedRxCheck_MSQ").format, AnswerFormat::kLetters);
  EXPECT_EQ(Rule(Track::kLegacyLlm, "DDx-basic").format, AnswerFormat::kLettersInBracketsComma);
  EXPECT_EQ(Rule(Track::kV4Llm, "SMDoc").format, AnswerFormat::kJsonObject);
  EXPECT_EQ(Rule(Track::kV4Llm, "MedHG").separator, "、");
  EXPECT_EQ(Rule(Track::kLegacyLlm, "MedHG").separator, "|");
  EXPECT_EQ(Rule(Track::kV4Llm, "MedTerm").format, AnswerFormat::kFreeText);
  for (const FormatRule& r : FormatRules()) EXPECT_FALSE(r.why.empty());
  // A dataset outside the table: read from its prompt.
  FormatRule r = RuleFor(Track::kV4Llm, "MyExam", "请回答单项选择题，答案放在<>里。\nA. 一\nB. 二");
  EXPECT_EQ(r.format, AnswerFormat::kLetterInBrackets);
  EXPECT_TRUE(absl::StrContains(r.why, "read from the prompt"));
}

TEST(FormatRulesTest, OneLetterInBrackets) {
  FormatRule r = Rule(Track::kV4Llm, "MedExam");
  EXPECT_EQ(CheckAnswer(r, "<C>", kFive), "");
  EXPECT_EQ(CheckAnswer(r, "  <C>\n", kFive), "");
  EXPECT_EQ(CheckAnswer(r, "< A >", kFive), "spaces inside <>");
  EXPECT_EQ(CheckAnswer(r, "< B>", kFive), "spaces inside <>");
  EXPECT_EQ(CheckAnswer(r, "<>", kFive), "nothing inside <>");
  EXPECT_EQ(CheckAnswer(r, "C", kFive), "the letter is not inside <>");
  EXPECT_EQ(CheckAnswer(r, "<AB>", kFive), "more than one letter inside <> (single choice)");
  EXPECT_TRUE(absl::StartsWith(CheckAnswer(r, "<F>", kFive), "'F' is not an option (A-E)"));
  EXPECT_TRUE(absl::StartsWith(
      CheckAnswer(r, "根据患者的临床表现，首先考虑急性阑尾炎，因此选择C，理由是转移性右下腹痛。",
                  kFive),
      "expected one letter inside <>, found 37 characters"));
}

TEST(FormatRulesTest, OneBareLetter) {
  FormatRule r = Rule(Track::kV4Llm, "MedSafety");
  EXPECT_EQ(CheckAnswer(r, "D", kFive), "");
  EXPECT_EQ(CheckAnswer(r, "d", kFive), "lowercase letter (case matters)");
  EXPECT_EQ(CheckAnswer(r, "<D>", kFive), "letter in <>, but the prompt asks for the bare letter");
  EXPECT_EQ(CheckAnswer(r, "", kFive), "empty answer");
}

TEST(FormatRulesTest, SeveralLetters) {
  FormatRule together = Rule(Track::kV4Llm, "MedRxCheck_MSQ");
  EXPECT_EQ(CheckAnswer(together, "ACD", kFive), "");
  EXPECT_TRUE(absl::StrContains(CheckAnswer(together, "A, C, D", kFive), "without separators"));
  EXPECT_EQ(CheckAnswer(together, "AAC", kFive), "'A' given twice");
  FormatRule commas = Rule(Track::kV4Llm, "DDx-advanced");
  EXPECT_EQ(CheckAnswer(commas, "A,C,E", kFive), "");
  EXPECT_EQ(CheckAnswer(commas, "A, C, E", kFive), "");
  EXPECT_EQ(CheckAnswer(commas, "B", kFive), "");
  FormatRule bracketed = Rule(Track::kLegacyLlm, "DDx-basic");
  EXPECT_EQ(CheckAnswer(bracketed, "<A, B>", kFive), "");
  EXPECT_TRUE(
      absl::StartsWith(CheckAnswer(bracketed, "A, B", kFive), "expected letters inside <>"));
}

TEST(FormatRulesTest, JsonAndLists) {
  FormatRule json = Rule(Track::kV4Llm, "SMDoc");
  EXPECT_EQ(CheckAnswer(json, R"({"主诉": "腰痛"})", {}), "");
  EXPECT_EQ(CheckAnswer(json, "```json\n{\"主诉\": \"腰痛\"}\n```", {}), "");
  EXPECT_EQ(CheckAnswer(json, R"(["a"])", {}), "JSON, but an array where an object is asked for");
  EXPECT_TRUE(absl::StartsWith(CheckAnswer(json, "主诉：腰痛", {}), "not JSON"));
  FormatRule list = Rule(Track::kV4Llm, "MedHG");
  EXPECT_EQ(CheckAnswer(list, "消化内科、普外科", {}), "");
  EXPECT_EQ(CheckAnswer(list, "消化内科", {}), "");
  EXPECT_TRUE(absl::StartsWith(CheckAnswer(list, "消化内科,普外科", {}), "items separated by ','"));
  EXPECT_TRUE(absl::StrContains(
      CheckAnswer(list, "建议您首先前往消化内科就诊，必要时再转诊至普外科进一步检查", {}),
      "prose"));
}

TEST(FormatRulesTest, MedReportQCTakesTheListTheBodiesAskForAndTheObject) {
  FormatRule r = Rule(Track::kV4Llm, "MedReportQC");
  EXPECT_EQ(r.format, AnswerFormat::kJsonObjectOrList);
  EXPECT_TRUE(absl::StrContains(r.why, "both comply"));
  EXPECT_EQ(CheckAnswer(r, R"([{"错误类型": "错别字", "修改建议": "描述：改"}])", {}), "");
  EXPECT_EQ(CheckAnswer(r, "[]", {}), "");
  EXPECT_EQ(CheckAnswer(r, "```json\n[]\n```", {}), "");
  EXPECT_EQ(CheckAnswer(r, R"({"错别字": "描述：改"})", {}), "");
  EXPECT_EQ(CheckAnswer(r, "{}", {}), "");
  EXPECT_EQ(CheckAnswer(r, R"([{"类型": "错别字"}])", {}), "item 1 has no \"错误类型\"");
  EXPECT_EQ(CheckAnswer(r, R"(["错别字"])", {}), "item 1 of the list is not an object");
}

TEST(FormatRulesTest, LabelledFieldsFromTheQuestionBodies) {
  FormatRule diag = Rule(Track::kV4Llm, "MedDiag");
  EXPECT_EQ(diag.format, AnswerFormat::kFields);
  EXPECT_EQ(CheckAnswer(diag, "初步诊断：慢性肾脏病\n诊断依据：肌酐升高5年", {}), "");
  EXPECT_EQ(CheckAnswer(diag, "1. **初步诊断**: 慢性肾脏病\n2. **诊断依据**：肌酐升高", {}), "");
  EXPECT_TRUE(absl::StartsWith(CheckAnswer(diag, "考虑慢性肾脏病，依据是肌酐升高。", {}),
                               "no line '初步诊断："));
  FormatRule outcome = Rule(Track::kV4Llm, "MedOutcome");
  EXPECT_EQ(CheckAnswer(outcome, R"({"预测结局": "好转", "理由": "……"})", {}), "");
  EXPECT_EQ(CheckAnswer(outcome, "预测结局：好转\n理由：……", {}), "");
  EXPECT_EQ(CheckAnswer(outcome, R"({"预测结局": "好转"})", {}), "a JSON object without \"理由\"");
  FormatRule clin = Rule(Track::kV4Llm, "CMB-Clin-extended");
  EXPECT_EQ(CheckAnswer(clin, "诊断：原醛症\n诊断依据：低钾\n需立即完善的检查：肾素", {}), "");
  // "诊断依据：" is not "诊断：".
  EXPECT_FALSE(CheckAnswer(clin, "诊断依据：低钾\n需立即完善的检查：肾素", {}).empty());
}

TEST(FormatRulesTest, LettersPastJAndWhitespaceOfAnyKind) {
  std::vector<ChoiceOption> twelve;
  for (char c = 'A'; c <= 'L'; ++c) twelve.push_back({c, std::string(1, c)});
  EXPECT_EQ(CheckAnswer(Rule(Track::kV4Llm, "DDx-advanced"), "A,K,L", twelve), "");
  EXPECT_EQ(CheckAnswer(Rule(Track::kV4Llm, "MedSafety"), "L", twelve), "");
  EXPECT_EQ(CheckAnswer(Rule(Track::kV4Llm, "MedSafety"), "\u3000D\u00a0", kFive), "");
  EXPECT_EQ(CheckAnswer(Rule(Track::kV4Llm, "MedTerm"), "\u3000\u3000", {}), "empty answer");
  EXPECT_EQ(CheckAnswer(Rule(Track::kV4Llm, "MedSafety"),
                        "\xEF\xBB\xBF"
                        "D",
                        kFive),
            "starts with a byte order mark (U+FEFF)");
}

}  // namespace
}  // namespace medeval
