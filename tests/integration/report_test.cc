// `medeval compare` end to end: three models answer the sample suite through
// real runs, the report is written, and headless Chromium (Debian's) renders
// it; the DOM it shows must agree with the audit computed here.
#include <cstdlib>
#include <regex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "audit/auditor.h"
#include "audit/submission.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

std::string Chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (PathExists(p)) return p;
  }
  return "";
}

class ReportTest : public ::testing::Test {
 protected:
  // Runs the sample suite for `model` against a simulator with `style`.
  void RunModel(const std::string& model, sim::SimOptions o) {
    sim::SimServer sim(o);
    ASSERT_TRUE(sim.Start().ok());
    std::string out, err;
    ASSERT_EQ(testing::RunMedeval(
                  {"run", "--data", testing::SamplesDir(), "--model", model, "--base-url",
                   absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"), "--out", tmp_ / "results"},
                  tmp_.path(), &out, &err),
              0)
        << err;
  }
  // The page as Chromium renders it at `hash`.
  std::string Dom(const std::string& hash) {
    std::string cmd =
        absl::StrCat(chromium_,
                     " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                     "--disable-background-networking --disable-component-update --disable-sync "
                     "--user-data-dir=",
                     tmp_ / "chrome", " --virtual-time-budget=5000 --dump-dom '", "file://",
                     tmp_ / "report.html#", hash, "' 2>/dev/null > ", tmp_ / "dom.html");
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return testing::ReadText(tmp_ / "dom.html");
  }
  static int Count(const std::string& dom) {
    std::smatch m;
    if (!std::regex_search(dom, m, std::regex("data-count=\"([0-9]+)\""))) return -1;
    return std::stoi(m[1]);
  }

  testing::TempDir tmp_;
  std::string chromium_ = Chromium();
};

TEST_F(ReportTest, TheBrowserShowsWhatTheAuditFound) {
  if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed";
  RunModel("steady", sim::SimOptions());
  sim::SimOptions flip;
  flip.style.flip_rate = 1.0;  // chooses by position: inconsistent under shuffles
  flip.style.reasoning_field = true;
  RunModel("flipper", flip);
  sim::SimOptions prose;
  prose.style.format_violation_rate = 0.5;
  RunModel("prose", prose);
  testing::WriteText(tmp_ / "scores.csv",
                     "model,task,score\nsteady,MedSafety,90\nsteady,MedEthics,70\n");
  std::string out, err;
  ASSERT_EQ(testing::RunMedeval({"compare", tmp_ / "results/steady", tmp_ / "results/flipper",
                                 tmp_ / "results/prose", "--data", testing::SamplesDir(), "--html",
                                 tmp_ / "report.html", "--markdown", tmp_ / "report.md", "--scores",
                                 tmp_ / "scores.csv"},
                                tmp_.path(), &out, &err),
            0)
      << err;
  const std::string html = testing::ReadText(tmp_ / "report.html");
  // Self-contained: nothing to fetch.
  EXPECT_FALSE(absl::StrContains(html, "src=")) << "the report loads something";
  EXPECT_FALSE(absl::StrContains(html, "<link"));

  // What the audit says, per dataset: questions in inconsistent groups, with
  // a format violation, and where the models disagree.
  std::vector<AuditReport> reports;
  auto suite = LoadSuite(testing::SamplesDir(), LoadOptions());
  ASSERT_TRUE(suite.ok());
  for (const char* m : {"steady", "flipper", "prose"}) {
    auto s = ReadSubmission(tmp_ / (std::string("results/") + m), nullptr);
    ASSERT_TRUE(s.ok());
    reports.push_back(Audit(*s, &*suite));
  }
  auto norm = [](const std::optional<std::string>& a) -> std::string {
    if (!a.has_value()) return "\x01";
    std::string s = absl::AsciiStrToUpper(*a);
    return absl::StrReplaceAll(s, {{" ", ""},
                                   {"<", ""},
                                   {">", ""},
                                   {"\n", ""},
                                   {"，", ""},
                                   {",", ""},
                                   {"。", ""},
                                   {".", ""}});
  };
  int checked = 0;
  for (size_t d = 0; d < reports[0].datasets.size(); ++d) {
    const std::string name = reports[0].datasets[d].dataset;
    int inconsistent = 0, violations = 0, disagree = 0;
    const size_t n = reports[0].datasets[d].lines.size();
    for (size_t i = 0; i < n; ++i) {
      bool inc = false, viol = false;
      std::set<std::string> seen;
      for (const auto& r : reports) {
        const AnsweredLine& a = r.datasets[d].lines[i];
        inc = inc || (!a.group.empty() && !a.group_consistent);
        viol = viol || !a.format_problem.empty() || !a.answer.has_value();
        // Choice answers compare by the option chosen, others by their text.
        seen.insert(a.choice.empty() ? norm(a.answer) : "c:" + a.choice);
      }
      inconsistent += inc;
      violations += viol;
      disagree += seen.size() > 1;
    }
    EXPECT_EQ(Count(Dom("dataset=" + name + "&filter=inconsistent")), inconsistent) << name;
    EXPECT_EQ(Count(Dom("dataset=" + name + "&filter=violations")), violations) << name;
    EXPECT_EQ(Count(Dom("dataset=" + name + "&filter=disagree")), disagree) << name;
    std::string all = Dom("dataset=" + name);
    EXPECT_EQ(Count(all), static_cast<int>(n)) << name;
    size_t articles = 0;
    for (size_t p = all.find("<article class=\"q\""); p != std::string::npos;
         p = all.find("<article class=\"q\"", p + 1)) {
      ++articles;
    }
    EXPECT_EQ(articles, std::min<size_t>(n, 25)) << name;
    if (name == "MedExam") {
      EXPECT_GT(inconsistent, 0);
      // Each answer shows the option it chose; each question its own part
      // first, the shared instructions folded.
      EXPECT_TRUE(absl::StrContains(all, "class=\"chosen\">chose ")) << name;
      EXPECT_TRUE(absl::StrContains(all, "<details class=\"shared\">")) << name;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  // Search reaches question text.
  EXPECT_EQ(Count(Dom("dataset=MedTerm&q=" + std::string("%E5%BF%83%E6%88%BF"))), 1);  // 心房
  // Summary and leaderboard.
  std::string dom = Dom("");
  EXPECT_TRUE(absl::StrContains(dom, "<td>flipper</td>"));
  EXPECT_TRUE(absl::StrContains(dom, "<b>–</b>"));  // steady has 2 of 36 tasks: no overall
  EXPECT_TRUE(absl::StrContains(dom, "<table id=\"datasets\">"));
  EXPECT_TRUE(absl::StrContains(dom, "Consensus estimates (3 models)"));
  EXPECT_TRUE(absl::StrContains(testing::ReadText(tmp_ / "report.md"), "| steady | 43 |"));

  // A screenshot of the question browser (kept with MEDEVAL_KEEP_TEST_DIRS=1).
  std::string shot = absl::StrCat(
      chromium_,
      " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
      "--disable-component-update --disable-sync --user-data-dir=",
      tmp_ / "chrome",
      " --window-size=1400,1600 --virtual-time-budget=5000 --screenshot=", tmp_ / "report.png",
      " 'file://", tmp_ / "report.html#dataset=MedExam&filter=inconsistent' 2>/dev/null");
  ASSERT_EQ(std::system(shot.c_str()), 0);
  EXPECT_GT(testing::ReadText(tmp_ / "report.png").size(), 10000u);
}

TEST_F(ReportTest, CompareNeedsAnOutput) {
  std::string out, err;
  EXPECT_EQ(testing::RunMedeval({"compare", testing::SamplesDir()}, tmp_.path(), &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "--html")) << err;
}

}  // namespace
}  // namespace medeval
