#include "common/suite.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using testing::TempDir;
using testing::WriteText;

constexpr char kGood[] = R"({"question": "q1", "answer": "", "other": {"id": 1, "source": "X"}})";

TEST(ValidateLineTest, AcceptsAWellFormedLine) {
  std::string q;
  std::vector<std::string> images;
  EXPECT_EQ(ValidateLine(kGood, false, &q, &images), "");
  EXPECT_EQ(q, "q1");
}

TEST(ValidateLineTest, SaysWhatIsWrong) {
  std::string q;
  std::vector<std::string> images;
  auto err = [&](const std::string& line) { return ValidateLine(line, false, &q, &images); };
  EXPECT_TRUE(absl::StrContains(err(R"({"question": "q", "other": )"), "invalid JSON"));
  EXPECT_EQ(err("[1, 2]"), "expected a JSON object, found array");
  EXPECT_EQ(err(R"({"other": {}})"), "missing \"question\"");
  EXPECT_EQ(err(R"({"question": 3, "other": {}})"), "\"question\" must be a string, found number");
  EXPECT_EQ(err(R"({"question": "", "other": {}})"), "\"question\" is empty");
  EXPECT_TRUE(absl::StartsWith(err(R"({"question": "q"})"), "missing \"other\""));
  EXPECT_EQ(err(R"({"question": "q", "other": "x"})"), "\"other\" must be an object, found string");
  EXPECT_EQ(err("{\"question\": \"\xff\", \"other\": {}}"), "invalid UTF-8 at byte 15");
}

TEST(ValidateLineTest, ChecksImagePathsOnTheVlmTrack) {
  std::string q;
  std::vector<std::string> images;
  EXPECT_EQ(ValidateLine(R"({"question": "q", "other": {}})", true, &q, &images),
            "missing \"img_path\"");
  EXPECT_EQ(ValidateLine(R"({"question": "q", "other": {}, "img_path": 5})", true, &q, &images),
            "\"img_path\" must be a string or a list, found number");
  EXPECT_EQ(ValidateLine(R"({"question": "q", "other": {}, "img_path": ["a.png", "b.jpg"]})", true,
                         &q, &images),
            "");
  EXPECT_EQ(images, (std::vector<std::string>{"a.png", "b.jpg"}));
}

TEST(LoadSuiteTest, ReportsEveryBadLineWithPathAndLine) {
  TempDir dir;
  WriteText(dir / "MedExam.jsonl", std::string(kGood) + "\n{broken\n\n" + kGood + "\n" +
                                       R"({"question": "q", "other": 7})" + "\n");
  LoadOptions opts;
  auto suite = LoadSuite(dir.path(), opts);
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->track, Track::kV4Llm);
  ASSERT_EQ(suite->datasets.size(), 1u);
  const Dataset& ds = suite->datasets[0];
  EXPECT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.line(0), 1u);
  EXPECT_EQ(ds.line(1), 4u);  // line 3 is blank
  EXPECT_EQ(ds.line_count, 5u);
  auto issues = suite->issues();
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].line, 2u);
  EXPECT_TRUE(absl::StartsWith(issues[0].ToString(), dir / "MedExam.jsonl:2: invalid JSON"))
      << issues[0].ToString();
  EXPECT_EQ(issues[1].ToString(),
            dir / "MedExam.jsonl:5: \"other\" must be an object, found number");
}

TEST(LoadSuiteTest, DetectsLegacyLayout) {
  TempDir dir;
  WriteText(
      dir / "Med-Exam/Med-Exam_test.jsonl",
      R"({"question": "q", "options": ["A. x"], "answer": null, "other": {"source": "Med-Exam"}})"
      "\n");
  auto suite = LoadSuite(dir.path(), LoadOptions());
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->track, Track::kLegacyLlm);
  EXPECT_EQ(suite->datasets[0].file.input_path, "Med-Exam/Med-Exam_test.jsonl");
  EXPECT_EQ(suite->datasets[0].file.output_name, "Med-Exam_test.jsonl");
  EXPECT_EQ(SubmissionFolder(suite->track), "MedBench");
}

TEST(DetectSuiteTest, ExplainsBadFolders) {
  TempDir dir;
  auto missing = DetectSuite(dir / "nope", nullptr, {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  WriteText(dir / "LLM/A.jsonl", kGood);
  auto empty = DetectSuite(dir.path(), nullptr, {});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(empty.status().message(), "subfolders here: LLM"))
      << empty.status();
  auto unknown = DetectSuite(dir / "LLM", nullptr, {"A", "B"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "--datasets names B"));
  Track legacy = Track::kLegacyLlm;
  EXPECT_FALSE(DetectSuite(dir / "LLM", &legacy, {}).ok());
}

TEST(DetectSuiteTest, TellsTracksByDatasetNames) {
  TempDir dir;
  WriteText(dir / "agent/MedCOT.jsonl", kGood);
  WriteText(dir / "agent/MedShield.jsonl", kGood);
  EXPECT_EQ(DetectSuite(dir / "agent", nullptr, {})->track, Track::kV4Agent);
  WriteText(dir / "mixed/MedCOT.jsonl", kGood);
  WriteText(dir / "mixed/MedOCR.jsonl", kGood);
  EXPECT_FALSE(DetectSuite(dir / "mixed", nullptr, {}).ok());
  Track llm = Track::kV4Llm;
  // A --track that some datasets do not belong to is refused, naming them.
  auto forced = DetectSuite(dir / "mixed", &llm, {});
  ASSERT_FALSE(forced.ok());
  EXPECT_TRUE(absl::StrContains(forced.status().message(), "MedCOT (v4-agent)"))
      << forced.status();
}

TEST(LoadSuiteTest, RealSharedSuites) {
  struct Case {
    const char* rel;
    Track track;
    size_t datasets;
    size_t questions;
  };
  for (const Case& c :
       {Case{"v4/LLM", Track::kV4Llm, 38, 1620}, Case{"v4/Agent", Track::kV4Agent, 14, 420},
        Case{"legacy/LLM", Track::kLegacyLlm, 20, 2337}}) {
    std::string root = testing::SharedMedbench(c.rel);
    if (root.empty()) GTEST_SKIP() << "../shared/medbench is absent";
    auto suite = LoadSuite(root, LoadOptions());
    ASSERT_TRUE(suite.ok()) << suite.status();
    EXPECT_EQ(suite->track, c.track) << c.rel;
    EXPECT_EQ(suite->datasets.size(), c.datasets) << c.rel;
    EXPECT_EQ(suite->question_count(), c.questions) << c.rel;
    EXPECT_TRUE(suite->issues().empty()) << c.rel << ": " << suite->issues()[0].ToString();
  }
}

TEST(LoadSuiteTest, VlmImagesAreCheckedBeforeTheRun) {
  TempDir dir;
  testing::WriteImage(dir / "MedVQA/ok.png", "png", 8, 8);
  testing::WriteImage(dir / "MedVQA/ok.jpg", "jpeg", 8, 8);
  testing::WritePdf(dir / "MedVQA/ok.pdf", 2);
  testing::WriteText(dir / "MedVQA/cut.png", std::string("\x89PNG\r\n\x1a\n", 8) + "xx");
  testing::WriteText(dir / "MedVQA/text.png", "not an image at all");
  testing::WriteText(dir / "MedVQA/cut.pdf", "%PDF-1.4\nnothing\n");
  auto line = [](const std::string& img) {
    return R"({"question": "q", "answer": "", "other": {"id": 1}, "img_path": )" + img + "}\n";
  };
  testing::WriteText(dir / "MedVQA.jsonl",
                     line(R"(["MedVQA/ok.png", "MedVQA/ok.jpg"])") +        // 1
                         line(R"("MedVQA/ok.pdf")") +                       // 2
                         line(R"(["MedVQA/ok.png", "MedVQA/gone.png"])") +  // 3
                         line(R"("MedVQA/cut.png")") +                      // 4
                         line(R"("MedVQA/text.png")") +                     // 5
                         line(R"("MedVQA/cut.pdf")") +                      // 6
                         line(R"("../outside.png")") +                      // 7
                         line(R"("MedVQA")"));                              // 8
  auto suite = LoadSuite(dir.path(), LoadOptions());
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->track, Track::kV4Vlm);
  const Dataset& ds = suite->datasets.at(0);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.images(0).size(), 2u);
  auto issues = suite->issues();
  ASSERT_EQ(issues.size(), 6u);
  const std::string f = dir / "MedVQA.jsonl";
  EXPECT_EQ(issues[0].ToString(), f + ":3: missing image MedVQA/gone.png");
  EXPECT_EQ(issues[0].files, std::vector<std::string>{"MedVQA/ok.png"})
      << "files that exist travel with a submission";
  EXPECT_EQ(issues[1].ToString(),
            f + ":4: damaged image MedVQA/cut.png (image/png header unreadable)");
  EXPECT_EQ(issues[2].ToString(),
            f + ":5: unsupported image type: MedVQA/text.png (PNG, JPEG, GIF, WebP or PDF)");
  EXPECT_TRUE(absl::StartsWith(issues[3].ToString(), f + ":6: damaged PDF MedVQA/cut.pdf"))
      << issues[3].ToString();
  EXPECT_EQ(issues[4].ToString(), f + ":7: image path escapes the suite folder: ../outside.png");
  EXPECT_EQ(issues[5].ToString(), f + ":8: image MedVQA is a folder, not a regular file; not read");
}

TEST(LoadSuiteTest, RealVlmSuiteReportsMissingImages) {
  std::string root = testing::SharedMedbench("v4/VLM");
  if (root.empty()) GTEST_SKIP() << "../shared/medbench is absent";
  auto suite = LoadSuite(root, LoadOptions());
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->track, Track::kV4Vlm);
  auto issues = suite->issues();
  ASSERT_FALSE(issues.empty());
  int missing = 0;
  for (const InputIssue& i : issues) {
    missing += absl::StartsWith(i.message, "missing image") ? 1 : 0;
    EXPECT_TRUE(absl::StartsWith(i.message, "missing image") ||
                absl::StartsWith(i.message, "damaged"))
        << i.ToString();
  }
  EXPECT_GT(missing, 0);
  EXPECT_EQ(suite->question_count() + issues.size(), 270u);
}

}  // namespace
}  // namespace medeval
