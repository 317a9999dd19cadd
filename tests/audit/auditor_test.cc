#include "audit/auditor.h"

#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_output.h"
#include "audit/submission.h"
#include "common/file_util.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string Line(const std::string& q, int id, const json& answer = "") {
  return json{{"question", q}, {"answer", answer}, {"other", {{"id", id}, {"source", "T"}}}}
             .dump() +
         "\n";
}

std::string Mcq(const std::string& stem, const std::vector<std::string>& opts) {
  std::string q = absl::StrCat("请回答单项选择题，填写到<>中。\n题目：", stem);
  for (size_t i = 0; i < opts.size(); ++i) {
    absl::StrAppend(&q, "\n", std::string(1, static_cast<char>('A' + i)), ". ", opts[i]);
  }
  return q;
}

// The letter of `text` among `opts`.
std::string LetterOf(const std::vector<std::string>& opts, const std::string& text) {
  for (size_t i = 0; i < opts.size(); ++i) {
    if (opts[i] == text) return std::string(1, static_cast<char>('A' + i));
  }
  return "?";
}

class AuditorTest : public ::testing::Test {
 protected:
  // Questions in q/, answers in sub/MedBench_LLM/; `answers` maps a dataset
  // to its answer file (absent: the file is missing).
  void Write(const std::map<std::string, std::string>& questions,
             const std::map<std::string, std::string>& answers) {
    for (const auto& [ds, text] : questions)
      testing::WriteText(tmp_ / ("q/" + ds + ".jsonl"), text);
    for (const auto& [ds, text] : answers) {
      testing::WriteText(tmp_ / ("sub/MedBench_LLM/" + ds + ".jsonl"), text);
    }
  }
  AuditReport Run(bool with_reference = true) {
    auto suite = LoadSuite(tmp_ / "q", LoadOptions());
    EXPECT_TRUE(suite.ok()) << suite.status();
    auto sub = ReadSubmission(tmp_ / "sub/MedBench_LLM", nullptr);
    EXPECT_TRUE(sub.ok()) << sub.status();
    suite_ = std::move(*suite);
    return Audit(*sub, with_reference ? &suite_ : nullptr);
  }
  static const DatasetAudit& Get(const AuditReport& r, const std::string& name) {
    for (const auto& d : r.datasets) {
      if (d.dataset == name) return d;
    }
    static DatasetAudit none;
    ADD_FAILURE() << "no dataset " << name;
    return none;
  }
  static std::vector<std::string> Kinds(const DatasetAudit& d) {
    std::vector<std::string> out;
    for (const auto& p : d.problems) out.push_back(absl::StrCat(p.line, ":", p.kind));
    return out;
  }

  testing::TempDir tmp_;
  Suite suite_;
};

TEST_F(AuditorTest, ConsistencyUnderShuffledOptionsCountsFlips) {
  const std::vector<std::vector<std::string>> orders = {{"甲", "乙", "丙", "丁", "戊"},
                                                        {"戊", "丁", "丙", "乙", "甲"},
                                                        {"乙", "甲", "丁", "戊", "丙"},
                                                        {"丙", "戊", "甲", "丁", "乙"},
                                                        {"丁", "丙", "戊", "甲", "乙"}};
  std::string questions, answers;
  // id 1 always picks 丙; id 2 picks 乙 four times and 甲 once (a flip);
  // id 3 picks 丁, but one answer is "<>".
  for (int id = 1; id <= 3; ++id) {
    for (size_t k = 0; k < orders.size(); ++k) {
      const std::string q = Mcq(absl::StrCat("第", id, "题"), orders[k]);
      questions += Line(q, id);
      std::string pick = id == 1 ? "丙" : id == 2 ? (k == 3 ? "甲" : "乙") : "丁";
      std::string a = absl::StrCat("<", LetterOf(orders[k], pick), ">");
      if (id == 3 && k == 2) a = "<>";
      answers += Line(q, id, a);
    }
  }
  Write({{"MedExam", questions}}, {{"MedExam", answers}});
  AuditReport r = Run();
  const DatasetAudit& d = Get(r, "MedExam");
  EXPECT_TRUE(d.repeats);
  EXPECT_EQ(d.groups, 3);
  EXPECT_EQ(d.consistent_groups, 1);
  EXPECT_EQ(d.unreadable_groups, 1);
  EXPECT_EQ(d.format_ok, 14);
  EXPECT_TRUE(d.complete());
  EXPECT_TRUE(r.ok(false));
  EXPECT_FALSE(r.ok(true));  // strict: "<>" is not in the format
}

TEST_F(AuditorTest, EveryKindOfBadFile) {
  const std::string q1 = Mcq("一", {"甲", "乙"}), q2 = Mcq("二", {"甲", "乙"}),
                    q3 = Mcq("三", {"甲", "乙"}), q4 = Mcq("四", {"甲", "乙"});
  std::string safety_q = Line(q1, 1) + Line(q2, 2) + Line(q3, 3) + Line(q4, 4);
  std::string safety_a = Line(q1, 1, "< A >") + Line(q2, 2, nullptr) +
                         Line(q3, 3, "根据题干分析，正确答案应该是B，因为……") + Line(q4, 4, "B");
  std::string ethics_q = Line("伦理一", 1) + Line("伦理二", 2);
  std::string ethics_a = "<<<<<<< HEAD\n" + Line("伦理一", 1, "A") + "=======\n" +
                         Line("伦理一", 1, "B") + ">>>>>>> theirs\n";
  std::string smdoc_q = Line("以json格式输出", 1) + Line("以json格式输出：二", 2);
  std::string smdoc_a = Line("以json格式输出", 1, R"({"主诉": "腰痛"})");
  std::string cut = Line("以json格式输出：二", 2, R"({"主诉": "头痛"})");
  smdoc_a += cut.substr(0, cut.size() / 2);  // cut short mid-line
  std::string term_q = Line("名词一", 1) + Line("名词二", 2);
  std::string term_a =
      Line("名词一", 1, "解释") + "{\"question\": \"名词二\", \"answer\": \"\xff\xfe\"}\n";
  std::string hc_q = Line("咨询一", 1) + Line("咨询二", 2) + Line("咨询三", 3);
  std::string hc_a =
      Line("咨询一", 1, "答一") + Line("咨询三", 3, "答三") + Line("咨询二", 2, "答二");
  std::string phm_q = Line("管理一", 1);
  std::string phm_a = Line("管理一", 1, "<think>想想</think>答案") + Line("多余", 9, "x");
  Write({{"MedSafety", safety_q},
         {"MedEthics", ethics_q},
         {"SMDoc", smdoc_q},
         {"MedTerm", term_q},
         {"MedHC", hc_q},
         {"MedPHM", phm_q},
         {"MedLitQA", Line("文献", 1)}},
        {{"MedSafety", safety_a},
         {"MedEthics", ethics_a},
         {"SMDoc", smdoc_a},
         {"MedTerm", term_a},
         {"MedHC", hc_a},
         {"MedPHM", phm_a}});
  AuditReport r = Run();
  EXPECT_FALSE(r.ok(false));

  const DatasetAudit& safety = Get(r, "MedSafety");
  EXPECT_EQ(safety.present, 4);
  EXPECT_EQ(safety.null_or_empty, 1);
  EXPECT_EQ(safety.format_checked, 3);
  EXPECT_EQ(safety.format_ok, 1);
  EXPECT_EQ(Kinds(safety), (std::vector<std::string>{"1:format", "2:null", "3:format"}));

  const DatasetAudit& ethics = Get(r, "MedEthics");
  // A marker where line 1 should be shifts the rest: line 2 holds line 1's question.
  EXPECT_EQ(ethics.invalid, 1);
  EXPECT_EQ(ethics.mismatched, 1);
  EXPECT_EQ(ethics.extra, 3);
  EXPECT_TRUE(absl::StrContains(ethics.problems[0].detail, "git conflict marker"));
  EXPECT_EQ(ethics.problems[1].kind, "out-of-order");

  const DatasetAudit& smdoc = Get(r, "SMDoc");
  EXPECT_EQ(smdoc.present, 1);
  EXPECT_EQ(smdoc.invalid, 1);
  EXPECT_EQ(smdoc.problems.back().detail, "invalid JSON (the file looks cut short)");

  const DatasetAudit& term = Get(r, "MedTerm");
  EXPECT_EQ(term.invalid, 1);
  EXPECT_TRUE(absl::StartsWith(term.problems[0].detail, "invalid UTF-8 at byte"));

  const DatasetAudit& hc = Get(r, "MedHC");
  EXPECT_EQ(hc.present, 1);
  EXPECT_EQ(hc.mismatched, 2);
  EXPECT_EQ(hc.problems[0].kind, "out-of-order");
  EXPECT_EQ(hc.problems[0].detail, "holds the question of input line 3");

  const DatasetAudit& phm = Get(r, "MedPHM");
  EXPECT_EQ(phm.leaks, 1);
  EXPECT_EQ(phm.extra, 1);

  const DatasetAudit& lit = Get(r, "MedLitQA");
  EXPECT_TRUE(lit.file.empty());
  EXPECT_EQ(lit.missing, 1);
  EXPECT_FALSE(lit.complete());

  // The table and the JSON say the same.
  std::string table = AuditTable(r);
  EXPECT_TRUE(absl::StrContains(
      table, "MedSafety.jsonl:1: format: letter in <>, but the prompt asks for the bare letter"))
      << table;
  auto j = AuditJson(r, false);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["totals"]["null_or_empty"], 1);
  EXPECT_EQ(j["datasets"][0]["dataset"], "MedEthics");
}

TEST_F(AuditorTest, WithoutTheQuestionsOnlyTheFileItselfIsChecked) {
  Write({{"MedTerm", Line("名词", 1)}}, {{"MedTerm", Line("名词", 1, "解释") + Line("多", 2, "")}});
  AuditReport r = Run(/*with_reference=*/false);
  const DatasetAudit& d = Get(r, "MedTerm");
  EXPECT_EQ(d.expected, -1);
  EXPECT_EQ(d.present, 2);
  EXPECT_EQ(d.null_or_empty, 1);
}

TEST_F(AuditorTest, ReadsZipsAndRunFolders) {
  Write({{"MedTerm", Line("名词", 1)}}, {{"MedTerm", Line("名词", 1, "解释")}});
  ASSERT_TRUE(WriteZip(tmp_ / "sub/MedBench_LLM.zip", {"MedBench_LLM"},
                       {{"MedBench_LLM/MedTerm.jsonl", tmp_ / "sub/MedBench_LLM/MedTerm.jsonl"}})
                  .ok());
  testing::WriteText(tmp_ / "sub/manifest.json", R"({"model": "org/the-model"})");
  testing::WriteText(tmp_ / "sub/records.jsonl",
                     R"({"dataset": "MedTerm", "line": 1, "reasoning": "想了想", "latency_s": 1.5,)"
                     R"( "usage": {"total_tokens": 99}, "finish_reason": "length", "flags": []})"
                     "\n");
  for (const std::string& path :
       {tmp_ / "sub", tmp_ / "sub/MedBench_LLM", tmp_ / "sub/MedBench_LLM.zip"}) {
    auto s = ReadSubmission(path, nullptr);
    ASSERT_TRUE(s.ok()) << path << ": " << s.status();
    EXPECT_EQ(s->label, "org/the-model") << path;
    EXPECT_EQ(s->folder, "MedBench_LLM");
    ASSERT_EQ(s->files.size(), 1u);
    AuditReport r = Audit(*s, nullptr);
    const AnsweredLine& a = r.datasets[0].lines[0];
    EXPECT_EQ(a.reasoning, "想了想");
    EXPECT_EQ(a.latency_s, 1.5);
    EXPECT_EQ(a.tokens, 99);
    EXPECT_TRUE(a.truncated);
    // Cut off at the token limit: kept and complete, but --strict fails, and
    // the table counts it.
    EXPECT_TRUE(r.ok(/*strict=*/false));
    EXPECT_FALSE(r.ok(/*strict=*/true));
    EXPECT_EQ(AuditJson(r, true)["totals"]["truncated"], 1);
    EXPECT_TRUE(
        absl::StrContains(AuditTable(r), "cut_off: the server stopped it at the token limit"));
  }
  EXPECT_EQ(ReadSubmission(tmp_ / "nowhere", nullptr).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditorTest, LinesTheRunLeftOutAreSkippedWithTheirReason) {
  Write({{"MedTerm", Line("一", 1) + Line("二", 2) + Line("三", 3)}},
        {{"MedTerm", Line("一", 1, "答") + Line("二", 2, "") + Line("三", 3, "")}});
  // Line 2 was left out by --skip-invalid; line 3 simply has no answer.
  testing::WriteText(tmp_ / "sub/manifest.json", R"({"model": "m",
      "inputs": [{"dataset": "MedTerm", "path": "MedTerm.jsonl"}],
      "skipped": [{"path": "MedTerm.jsonl", "line": 2, "reason": "missing image x.png"}]})");
  auto sub = ReadSubmission(tmp_ / "sub", nullptr);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto suite = LoadSuite(tmp_ / "q", LoadOptions());
  ASSERT_TRUE(suite.ok());
  AuditReport r = Audit(*sub, &*suite);
  const DatasetAudit& d = Get(r, "MedTerm");
  EXPECT_EQ(d.skipped, 1);
  EXPECT_EQ(d.null_or_empty, 1);
  EXPECT_EQ(Kinds(d), (std::vector<std::string>{"2:skipped", "3:empty"}));
  EXPECT_EQ(d.problems[0].detail, "missing image x.png (left out by --skip-invalid)");
  EXPECT_TRUE(absl::StrContains(AuditTable(r, 5), "MedTerm.jsonl:2: skipped: missing image x.png"));
  EXPECT_EQ(AuditJson(r, false, 10)["totals"]["skipped"], 1);

  // Skipped alone: complete (a known choice), but not under --strict.
  Write({}, {{"MedTerm", Line("一", 1, "答") + Line("二", 2, "") + Line("三", 3, "答")}});
  sub = ReadSubmission(tmp_ / "sub", nullptr);
  ASSERT_TRUE(sub.ok());
  r = Audit(*sub, &*suite);
  EXPECT_TRUE(r.ok(/*strict=*/false));
  EXPECT_FALSE(r.ok(/*strict=*/true));
}

// The fixture in tests/audit/fixtures/v4 (written by make_fixtures.py): the
// shapes real published answers take, with the expected numbers.
class FixtureTest : public AuditorTest {
 protected:
  void SetUp() override {
    const std::string root = JoinPath(MEDEVAL_SOURCE_DIR, "tests/audit/fixtures/v4");
    auto suite = LoadSuite(JoinPath(root, "questions"), LoadOptions());
    ASSERT_TRUE(suite.ok()) << suite.status();
    suite_ = std::move(*suite);
    auto sub = ReadSubmission(JoinPath(root, "answers"), nullptr);
    ASSERT_TRUE(sub.ok()) << sub.status();
    report_ = Audit(*sub, &suite_);
  }
  AuditReport report_;
};

TEST_F(FixtureTest, ConsistencyReadsWhatTheModelChose) {
  const DatasetAudit& d = Get(report_, "MedExam");
  EXPECT_EQ(d.format_checked, 9);
  EXPECT_EQ(d.format_ok, 6);  // "…\n\n<C>", "答：<C>" and the cut-off one are not in format
  EXPECT_EQ(d.groups, 3);
  // id 1: a rationale mentioning "B超" and "选项A" that ends in the asked form
  // chose the same option as the two others.
  EXPECT_EQ(d.consistent_ids, (std::vector<std::string>{"1"}));
  EXPECT_EQ(d.inconsistent_ids, (std::vector<std::string>{"2"}));
  // id 3: nothing is read from reasoning that was cut off.
  EXPECT_EQ(d.unreadable_ids, (std::vector<std::string>{"3"}));
  EXPECT_EQ(d.lines[1].choice, "丙");
  EXPECT_EQ(d.lines[1].letters, "C");
  EXPECT_EQ(d.lines[2].letters, "E");
  EXPECT_EQ(d.lines[8].choice_why, "cut off: nothing is read from it");
  EXPECT_EQ(d.leaks, 1);
  EXPECT_EQ(d.truncated, 1);
}

TEST_F(FixtureTest, FormatRulesFromTheQuestionBodies) {
  const DatasetAudit& qc = Get(report_, "MedReportQC");
  EXPECT_EQ(qc.format_ok, 3);  // a list, an empty list, an object
  EXPECT_EQ(Kinds(qc), (std::vector<std::string>{"4:format"}));
  const DatasetAudit& ddx = Get(report_, "DDx-advanced");
  EXPECT_EQ(ddx.format_ok, 1);  // A,K,L with options up to L
  const DatasetAudit& safety = Get(report_, "MedSafety");
  EXPECT_TRUE(safety.bom);
  EXPECT_EQ(safety.null_or_empty, 1);  // U+3000 only
  EXPECT_EQ(safety.format_checked, 2);
  EXPECT_EQ(safety.format_ok, 2);  // "L" of twelve options
  EXPECT_EQ(Kinds(safety), (std::vector<std::string>{"1:bom", "2:empty"}));
  EXPECT_FALSE(report_.ok(/*strict=*/true));
}

TEST_F(FixtureTest, UntaggedReasoningAndCutOffOnPhysicalLines) {
  const DatasetAudit& term = Get(report_, "MedTerm");
  // Line 2 of the file is blank: question 2 is on line 3, and so on.
  EXPECT_EQ(Kinds(term), (std::vector<std::string>{"3:cut_off", "4:untagged_reasoning",
                                                   "5:untagged_reasoning", "6:cut_off"}));
  EXPECT_EQ(term.untagged_reasoning, 2);
  EXPECT_EQ(term.truncated, 2);  // question 2 by its record, question 5 by its text
  EXPECT_TRUE(absl::StrContains(term.problems[0].detail, "finish_reason: length"));
  EXPECT_FALSE(term.lines[0].truncated);  // a long answer ending on a list item
  EXPECT_FALSE(term.lines[5].truncated);  // looks cut off, but the record says it stopped
  EXPECT_EQ(term.format_ok, 6);
}

TEST_F(FixtureTest, CountsThatAddUp) {
  const DatasetAudit& hg = Get(report_, "MedHG");
  EXPECT_EQ(hg.missing, 2);
  ASSERT_EQ(hg.problems.size(), 1u);
  EXPECT_EQ(hg.problems[0].detail, "file missing, 2 questions");
  EXPECT_EQ(report_.label, "fixture-model");
  EXPECT_EQ(report_.label_source, "manifest.json");
  EXPECT_TRUE(absl::EndsWith(report_.read_from, "answers/MedBench_LLM/")) << report_.read_from;
  const std::string table = AuditTable(report_);
  EXPECT_TRUE(absl::StrContains(table, "  MedHG.jsonl: file missing, 2 questions\n")) << table;
  EXPECT_TRUE(absl::StrContains(table, "read: ")) << table;
  EXPECT_TRUE(absl::StrContains(table, "label from manifest.json")) << table;
  EXPECT_TRUE(absl::StrContains(table, "TRUNCATED")) << table;
  EXPECT_TRUE(absl::StrContains(table, "MedExam.jsonl: shuffled ids inconsistent 2; unreadable 3"))
      << table;
  auto j = AuditJson(report_, true);
  const auto& t = j["totals"];
  EXPECT_EQ(t["expected"], 25);
  EXPECT_EQ(t["present"], 23);
  EXPECT_EQ(t["missing"], 2);
  EXPECT_EQ(t["null_or_empty"], 1);
  EXPECT_EQ(t["format_checked"], 22);
  EXPECT_EQ(t["format_ok"], 18);
  EXPECT_EQ(t["untagged_reasoning"], 2);
  EXPECT_EQ(t["truncated"], 3);
  EXPECT_EQ(t["bom"], 1);
  EXPECT_EQ(j["ok"], false);
  // Every total is the sum of the datasets'.
  for (const char* k : {"present", "missing", "null_or_empty", "invalid", "extra", "mismatched",
                        "untagged_reasoning", "truncated", "lines_read"}) {
    int64_t sum = 0;
    for (const auto& d : j["datasets"]) sum += d[k].get<int64_t>();
    EXPECT_EQ(t[k], sum) << k;
  }
}

TEST_F(AuditorTest, InvalidAndExtraAreCountedApart) {
  Write(
      {{"MedTerm", Line("一", 1) + Line("二", 2)}},
      {{"MedTerm", Line("一", 1, "答") + "not json\n" + Line("三", 3, "x") + Line("四", 4, "y")}});
  AuditReport r = Run();
  const DatasetAudit& d = Get(r, "MedTerm");
  EXPECT_EQ(d.invalid, 1);
  EXPECT_EQ(d.extra, 2);
  EXPECT_LE(d.invalid, d.expected);
  auto j = AuditJson(r, false);
  EXPECT_EQ(j["totals"]["invalid"], 1);
  EXPECT_EQ(j["totals"]["extra"], 2);
  // Without the questions the denominator is the lines read.
  r = Run(/*with_reference=*/false);
  EXPECT_TRUE(absl::StrContains(AuditTable(r), "3/4")) << AuditTable(r);
}

}  // namespace
}  // namespace medeval
