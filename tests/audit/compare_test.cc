// The comparison report's parts: shared question text, the browser's data,
// the per-dataset and consensus tables.
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "audit/compare_browser.h"
#include "audit/compare_report.h"
#include "audit/compare_tables.h"
#include "audit/submission.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(SharedPartsTest, WholeLinesSharedByEveryQuestion) {
  const std::string a = "## 任务：单选\n示例：A. 一\n\n## 题目：甲病？\nA. x\nB. y\n请作答。\n";
  const std::string b = "## 任务：单选\n示例：A. 一\n\n## 题目：乙病？\nA. z\nB. w\n请作答。\n";
  SharedParts p = FindSharedParts({a, b});
  EXPECT_EQ(a.substr(0, p.prefix), "## 任务：单选\n示例：A. 一\n\n");
  EXPECT_EQ(a.substr(a.size() - p.suffix), "\n请作答。\n");
  // One question, or nothing shared: nothing folded.
  EXPECT_EQ(FindSharedParts({a}).prefix, 0u);
  EXPECT_EQ(FindSharedParts({"甲", "乙"}).suffix, 0u);
  // Identical texts do not fold to nothing.
  SharedParts same = FindSharedParts({a, a});
  EXPECT_LE(same.prefix + same.suffix, a.size());
}

class CompareFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string root = JoinPath(MEDEVAL_SOURCE_DIR, "tests/audit/fixtures/v4");
    auto suite = LoadSuite(JoinPath(root, "questions"), LoadOptions());
    ASSERT_TRUE(suite.ok());
    suite_ = std::move(*suite);
    for (const char* label : {"one", "two", "three"}) {
      auto sub = ReadSubmission(JoinPath(root, "answers"), nullptr);
      ASSERT_TRUE(sub.ok());
      sub->label = label;
      reports_.push_back(Audit(*sub, &suite_));
    }
  }
  Suite suite_;
  std::vector<AuditReport> reports_;
};

TEST_F(CompareFixture, TheBrowserShowsOwnPartsChoicesAndWhy) {
  nlohmann::json data = BrowserData(reports_, ComputeConsensus(reports_));
  EXPECT_EQ(data["consensus_models"], 3);
  const nlohmann::json* exam = nullptr;
  const nlohmann::json* hg = nullptr;
  for (const auto& d : data["datasets"]) {
    if (d["name"] == "MedExam") exam = &d;
    if (d["name"] == "MedHG") hg = &d;
  }
  ASSERT_NE(exam, nullptr);
  ASSERT_NE(hg, nullptr);
  // The shared instructions and worked example once; each question its own part.
  EXPECT_TRUE(absl::StartsWith((*exam)["pre"].get<std::string>(), "## 任务：请回答单项选择题"));
  const auto& q0 = (*exam)["q"][0];
  EXPECT_TRUE(absl::StartsWith(q0["t"].get<std::string>(), "## 题目：第1题")) << q0["t"];
  EXPECT_EQ(q0["c"], "丙");  // the consensus option, by text
  // The option chosen, by letter and text.
  EXPECT_EQ(q0["a"][0][4], "C · 丙");
  // An inconsistent id says what its shuffles chose.
  const auto& q3 = (*exam)["q"][3];
  EXPECT_EQ(q3["a"][0][2].get<int>() & kFlagInconsistent, kFlagInconsistent);
  EXPECT_EQ((*exam)["gs"]["id 2"][0], "乙 ×2 · 甲 ×1");
  EXPECT_FALSE((*exam)["gs"].contains("id 1"));  // consistent: nothing to say
  // The cut-off answer: no option read, and why.
  const auto& q8 = (*exam)["q"][8];
  EXPECT_EQ(q8["a"][0][2].get<int>() & (kFlagTruncated | kFlagUnreadable),
            kFlagTruncated | kFlagUnreadable);
  EXPECT_TRUE(absl::StartsWith(q8["a"][0][5].get<std::string>(),
                               "no option read: cut off: nothing is read from it"));
  // A missing file says so instead of "(no line)".
  EXPECT_EQ((*hg)["q"][0]["a"][1][5], "the file is missing");
}

TEST_F(CompareFixture, TablesPerDatasetAndConsensusInHtmlAndMarkdown) {
  const std::string md = CompareMarkdown(reports_, nullptr);
  EXPECT_TRUE(absl::StrContains(md, "| MedHG | one | 0/2 | – | – | 0 | 0 | file missing |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| MedTerm | two | 6/6 | 6/6 | – | 2 | 2 |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "## Consensus estimates (3 models)")) << md;
  EXPECT_TRUE(absl::StrContains(md, "Estimates, not scores")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| **overall** |")) << md;
  const std::string html = CompareHtml(reports_, nullptr);
  EXPECT_TRUE(absl::StrContains(html, "<table id=\"datasets\">"));
  EXPECT_TRUE(absl::StrContains(html, "<table id=\"consensus\">"));
  EXPECT_TRUE(absl::StrContains(html, "Consensus estimates (3 models)"));
  // Two models: the estimates are left out, and the page says why.
  std::vector<AuditReport> two(reports_.begin(), reports_.begin() + 2);
  EXPECT_TRUE(absl::StrContains(CompareHtml(two, nullptr), "Not computed: 2 models"));
  EXPECT_FALSE(absl::StrContains(CompareMarkdown(two, nullptr), "| **overall** |"));
}

TEST_F(CompareFixture, ChartLabelsFit) {
  reports_[0].label = "an-organisation/a-very-long-model-name-that-would-not-fit-v2.5-instruct";
  const std::string html = CompareHtml(reports_, nullptr);
  EXPECT_TRUE(absl::StrContains(html, "<title>an-organisation/a-very-long-model-name"));
  EXPECT_TRUE(absl::StrContains(html, "…</text>"));
}

}  // namespace
}  // namespace medeval
