#include "audit/leaderboard.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

// Every v4 task at `score`, MedRxCheck given as its three files.
std::string LongCsv(const std::string& model, double score) {
  std::string csv;
  for (const Dimension& d : V4Dimensions()) {
    for (const std::string& t : d.tasks) {
      if (t == "MedRxCheck") {
        for (const char* part : {"MedRxCheck_SCQ", "MedRxCheck_MSQ", "MedRxCheck_SQ"}) {
          csv += model + "," + part + "," + std::to_string(score) + "\n";
        }
      } else {
        csv += model + "," + t + "," + std::to_string(score) + "\n";
      }
    }
  }
  return csv;
}

TEST(LeaderboardTest, DimensionsAreMeansOfTasksAndOverallTheMeanOfDimensions) {
  EXPECT_EQ(V4Dimensions().size(), 5u);
  size_t tasks = 0;
  for (const auto& d : V4Dimensions()) tasks += d.tasks.size();
  EXPECT_EQ(tasks, 36u);  // 38 v4 LLM files, the three MedRxCheck ones are one task
  std::string csv = "task,score,model\n" + LongCsv("b", 50);
  // Model a: 80 everywhere except safety & ethics at 20 and 40.
  std::string a = LongCsv("a", 80);
  size_t pos = a.find("a,MedSafety,");
  a.replace(pos, a.find('\n', pos) - pos, "a,MedSafety,20");
  pos = a.find("a,MedEthics,");
  a.replace(pos, a.find('\n', pos) - pos, "a,MedEthics,40");
  csv = "model,task,score\n" + a + LongCsv("b", 50);
  auto s = ParseScoresCsv(csv, "scores.csv");
  ASSERT_TRUE(s.ok()) << s.status();
  auto rows = Leaderboard(*s);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].model, "a");
  EXPECT_DOUBLE_EQ(*rows[0].dimensions[4], 30);  // (20 + 40) / 2
  EXPECT_DOUBLE_EQ(*rows[0].overall, (80 * 4 + 30) / 5.0);
  EXPECT_DOUBLE_EQ(*rows[1].overall, 50);
}

TEST(LeaderboardTest, WideFormAndMissingTasks) {
  auto s = ParseScoresCsv("model,MedSafety,MedEthics,Foo\n\"m, 1\",60,70,5\n", "s.csv");
  ASSERT_TRUE(s.ok()) << s.status();
  auto rows = Leaderboard(*s);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].model, "m, 1");
  EXPECT_DOUBLE_EQ(*rows[0].dimensions[4], 65);
  EXPECT_FALSE(rows[0].dimensions[0].has_value());
  EXPECT_FALSE(rows[0].overall.has_value());
  EXPECT_EQ(rows[0].missing_tasks.size(), 34u);
  ASSERT_EQ(s->notes.size(), 1u);
  EXPECT_TRUE(absl::StrContains(s->notes[0], "Foo"));
}

TEST(LeaderboardTest, ErrorsNameTheLine) {
  EXPECT_TRUE(
      absl::StartsWith(ParseScoresCsv("task,score\nMedExam,1\n", "s.csv").status().message(),
                       "s.csv:1: the header needs a 'model' column"));
  EXPECT_EQ(ParseScoresCsv("model,task,score\nm,MedExam,high\n", "s.csv").status().message(),
            "s.csv:2: score 'high' is not a number");
  EXPECT_EQ(ParseScoresCsv("model,task,score\nm,MedExam\n", "s.csv").status().message(),
            "s.csv:2: 2 fields where the header has 3");
}

}  // namespace
}  // namespace medeval
