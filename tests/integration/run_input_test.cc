// `medeval run` with the everyday mistakes and odd folders people have: the
// track that contradicts the datasets, names no track publishes, one legacy
// dataset folder, links out of the suite, FIFOs, hidden files, lines no
// upload file can hold, prefilled answers, blank lines and keys with line
// breaks. Each is refused before anything is asked, or handled so the upload
// files hold only what the user meant. Real medeval processes, real sim.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/suite.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string Line(const std::string& q, int id, const std::string& answer = "") {
  return json{{"question", q}, {"answer", answer}, {"other", {{"id", id}}}}.dump() + "\n";
}

std::string VlmLine(const std::string& q, int id, const json& img) {
  return json{{"question", q}, {"answer", ""}, {"img_path", img}, {"other", {{"id", id}}}}.dump() +
         "\n";
}

class RunInputTest : public ::testing::Test {
 protected:
  void SetUp() override { Serve(); }
  void Serve(sim::SimOptions o = sim::SimOptions()) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  int Requests() const { return json::parse(sim_->StatsJson())["requests"].get<int>(); }
  int Run(const std::string& data, std::vector<std::string> extra = {},
          std::map<std::string, std::string> env = {}) {
    std::vector<std::string> a = {"run", "--data", data, "--model", "m", "--base-url", Url()};
    if (std::find(extra.begin(), extra.end(), "--out") == extra.end()) {
      a.push_back("--out");
      a.push_back(tmp_ / "results");
    }
    a.insert(a.end(), extra.begin(), extra.end());
    return testing::RunMedeval(a, tmp_.path(), &out_, &err_, env, absl::Seconds(60));
  }
  std::vector<std::string> AnswerLines(const std::string& rel) {
    const std::string text = testing::ReadText(tmp_ / ("results/m/" + rel));
    std::vector<std::string> out;
    for (absl::string_view l : SplitLines(text)) out.emplace_back(l);
    return out;
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

// --- The right track, or a clear error --------------------------------------

TEST_F(RunInputTest, ATrackThatContradictsTheDatasetsIsRefused) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  testing::WriteText(tmp_ / "suite/MedSafety.jsonl", Line("q2", 2));
  EXPECT_EQ(Run(tmp_ / "suite", {"--track", "v4-agent"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedExam (v4-llm)")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedSafety (v4-llm)")) << err_;
  EXPECT_EQ(Requests(), 0);
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_Agent.zip"));
}

TEST_F(RunInputTest, AnUnknownDatasetNameIsAnErrorAndImageLinesNeverGoAsText) {
  const std::string root = tmp_ / "suite";
  testing::WriteImage(JoinPath(root, "img/a.png"), "png", 32, 24);
  testing::WriteText(JoinPath(root, "MedNewScan.jsonl"),
                     VlmLine("看图回答。", 1, "img/a.png") + Line("只有文字的问题。", 2));
  EXPECT_EQ(Run(root), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedNewScan is not published by MedBench")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedExam")) << err_;  // the known names are listed
  EXPECT_TRUE(absl::StrContains(err_, "--track")) << err_;
  EXPECT_EQ(Requests(), 0);

  // As text, the line with images is invalid: never sent without them.
  EXPECT_EQ(Run(root, {"--track", "v4-llm"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedNewScan.jsonl:1: has \"img_path\"")) << err_;
  EXPECT_EQ(Requests(), 0);
  ASSERT_EQ(Run(root, {"--track", "v4-llm", "--skip-invalid"}), 0) << err_;
  EXPECT_EQ(Requests(), 1);
  auto lines = AnswerLines("MedBench_LLM/MedNewScan.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json::parse(lines[0])["answer"], "");

  // As the VLM track it goes with its image.
  ASSERT_EQ(Run(root, {"--track", "v4-vlm", "--skip-invalid", "--out", tmp_ / "vlm"}), 0) << err_;
  EXPECT_EQ(Requests(), 1 + 1);  // the text-only line has no image: left out there
}

TEST_F(RunInputTest, OneLegacyDatasetFolderIsALegacySuite) {
  const std::string folder = tmp_ / "legacy/CHIP-CDEE";
  testing::WriteText(JoinPath(folder, "CHIP-CDEE_test.jsonl"), Line("a", 1) + Line("b", 2));
  testing::WriteText(JoinPath(folder, "example_submission.jsonl"), Line("a", 1, "x"));
  ASSERT_EQ(Run(folder), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "example submission, not a dataset")) << err_;
  EXPECT_EQ(Requests(), 2);
  auto zip = ReadZip(tmp_ / "results/m/MedBench.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
  std::vector<std::string> names;
  for (const auto& e : *zip) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"MedBench/", "MedBench/CHIP-CDEE_test.jsonl"}));
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));
}

// --- Input files that are not what they seem --------------------------------

TEST_F(RunInputTest, DataFileLinksOutsideTheSuiteAreRefused) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  testing::WriteText(tmp_ / "outside/secret.jsonl", Line("secret", 1));
  ASSERT_EQ(
      ::symlink((tmp_ / "outside/secret.jsonl").c_str(), (tmp_ / "suite/MedSafety.jsonl").c_str()),
      0);
  EXPECT_EQ(Run(tmp_ / "suite", {"--skip-invalid"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedSafety.jsonl links outside the suite folder")) << err_;
  EXPECT_EQ(Requests(), 0);

  // A legacy dataset folder that is a link to elsewhere.
  testing::WriteText(tmp_ / "legacy/Med-Exam/Med-Exam_test.jsonl", Line("q", 1));
  testing::WriteText(tmp_ / "elsewhere/DrugCA/DrugCA_test.jsonl", Line("q", 2));
  ASSERT_EQ(::symlink((tmp_ / "elsewhere/DrugCA").c_str(), (tmp_ / "legacy/DrugCA").c_str()), 0);
  EXPECT_EQ(Run(tmp_ / "legacy"), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "DrugCA_test.jsonl links outside the suite folder")) << err_;
  EXPECT_EQ(Requests(), 0);
}

TEST_F(RunInputTest, ImageLinksOutsideTheSuiteAndDevicesAreNeverRead) {
  const std::string root = tmp_ / "suite";
  testing::WriteImage(JoinPath(root, "img/ok.png"), "png", 32, 24);
  testing::WriteImage(tmp_ / "outside/private.png", "png", 32, 24);
  ASSERT_EQ(
      ::symlink((tmp_ / "outside/private.png").c_str(), JoinPath(root, "img/out.png").c_str()), 0);
  ASSERT_EQ(::symlink("/dev/zero", JoinPath(root, "img/zero.png").c_str()), 0);
  ASSERT_EQ(::mkfifo(JoinPath(root, "img/fifo.png").c_str(), 0644), 0);
  testing::WriteText(JoinPath(root, "MedVQA.jsonl"), VlmLine("q ok", 1, "img/ok.png") +
                                                         VlmLine("q out", 2, "img/out.png") +
                                                         VlmLine("q zero", 3, "img/zero.png") +
                                                         VlmLine("q fifo", 4, "img/fifo.png"));
  const std::string jl = JoinPath(root, "MedVQA.jsonl");
  EXPECT_EQ(Run(root), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, jl + ":2: image img/out.png links outside the suite folder"))
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, jl + ":3: image img/zero.png links outside")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, jl + ":4: image img/fifo.png is a FIFO")) << err_;
  EXPECT_EQ(Requests(), 0);

  ASSERT_EQ(Run(root, {"--skip-invalid"}), 0) << err_;
  EXPECT_EQ(Requests(), 1);
  // Nothing from outside was copied into the run's saved state.
  auto files = ListFilesRecursive(tmp_ / "results/.medeval");
  ASSERT_TRUE(files.ok());
  for (const std::string& f : *files) EXPECT_FALSE(absl::StrContains(f, "out.png")) << f;
}

TEST_F(RunInputTest, AFifoUnderDataIsRefusedNotWaitedOn) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  ASSERT_EQ(::mkfifo((tmp_ / "suite/MedHC.jsonl").c_str(), 0644), 0);
  EXPECT_EQ(Run(tmp_ / "suite"), 2) << err_;  // -1 would be a hang
  EXPECT_TRUE(absl::StrContains(err_, "MedHC.jsonl is a FIFO")) << err_;
  EXPECT_EQ(Requests(), 0);
}

TEST_F(RunInputTest, HiddenAndUpperCaseFilesAreNamedNotSilentlySkipped) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  testing::WriteText(tmp_ / "suite/.x.jsonl", Line("hidden", 1));
  testing::WriteText(tmp_ / "suite/._MedHG.jsonl", "\x00\x05\x16\x07 Mac OS X resource fork");
  testing::WriteText(tmp_ / "suite/MedTerm.JSONL", Line("upper", 1));
  ASSERT_EQ(Run(tmp_ / "suite"), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, ".x.jsonl: a hidden file")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "._MedHG.jsonl: a hidden file (a macOS resource fork)"))
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedTerm.JSONL: dataset files end in .jsonl")) << err_;
  EXPECT_EQ(Requests(), 1);
  auto zip = ReadZip(tmp_ / "results/m/MedBench_LLM.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(zip->size(), 2u);
}

TEST_F(RunInputTest, SkipInvalidNeverCopiesUnreadableLinesIntoUploadFiles) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl",
                     Line("q1", 1) + "{\"question\": \"bad \xff\xfe\", \"other\": {}}\n" +
                         "not json at all\n" + Line("q4", 4));
  testing::WriteText(tmp_ / "suite/MedSafety.jsonl",
                     Line("q1", 1) + "{\"question\": \"no other\", \"answer\": \"B\"}\n");
  EXPECT_EQ(Run(tmp_ / "suite", {"--skip-invalid"}), 1) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "no upload zip was written")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedExam.jsonl:2")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "MedExam.jsonl:3")) << err_;
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));
  json m = json::parse(testing::ReadText(tmp_ / "results/m/manifest.json"));
  EXPECT_EQ(m["complete"], false);
  EXPECT_EQ(m["blocking_lines"].size(), 2u);
  // A JSON line left out keeps its place, with an empty answer.
  auto safety = AnswerLines("MedBench_LLM/MedSafety.jsonl");
  ASSERT_EQ(safety.size(), 2u);
  EXPECT_EQ(json::parse(safety[1])["answer"], "");

  // With the unreadable lines removed the zip is written.
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1) + Line("q4", 4));
  ASSERT_EQ(Run(tmp_ / "suite", {"--skip-invalid", "--replace"}), 0) << err_;
  auto zip = ReadZip(tmp_ / "results/m/MedBench_LLM.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
  for (const auto& e : *zip) {
    if (e.name.back() == '/') continue;
    for (absl::string_view l : SplitLines(e.data)) {
      EXPECT_TRUE(json::parse(l, nullptr, false).is_object()) << e.name << ": " << l;
    }
  }
}

TEST_F(RunInputTest, FailedQuestionsCarryAnEmptyAnswerNeverAPrefilledOne) {
  sim::SimOptions o;
  o.fail_rate = 1.0;
  Serve(o);
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1, "<A>") + Line("q2", 2, "<B>"));
  EXPECT_EQ(Run(tmp_ / "suite", {"--max-attempts", "1", "--allow-incomplete-zip"}), 1) << err_;
  auto lines = AnswerLines("MedBench_LLM/MedExam.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(json::parse(l)["answer"], "") << l;
}

TEST_F(RunInputTest, BlankLinesAreNotQuestionsAndNotCopied) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl",
                     Line("q1", 1) + "\n   \n" + Line("q2", 2) + "\t\n");
  ASSERT_EQ(Run(tmp_ / "suite"), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "3 blank lines are not a question")) << err_;
  EXPECT_EQ(Requests(), 2);
  auto lines = AnswerLines("MedBench_LLM/MedExam.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_FALSE(IsBlankLine(l));
}

TEST_F(RunInputTest, KeysAndHeadersWithLineBreaksAreRefusedBeforeAnythingIsSent) {
  sim::SimOptions o;
  o.api_key = "the-key";
  Serve(o);
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  testing::WriteText(tmp_ / "two-lines.key", "the-key\nX-Injected: yes\n");
  EXPECT_EQ(Run(tmp_ / "suite", {"--api-key-file", tmp_ / "two-lines.key"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "line break")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "the-key")) << err_;
  EXPECT_EQ(Requests(), 0);

  EXPECT_EQ(Run(tmp_ / "suite", {"--header", "X-A: b\r\nX-Injected: yes"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "line break")) << err_;
  EXPECT_EQ(Requests(), 0);

  EXPECT_EQ(Run(tmp_ / "suite", {"--api-key-env", "MEDEVAL_TEST_EMPTY_KEY"},
                {{"MEDEVAL_TEST_EMPTY_KEY", ""}}),
            2);
  EXPECT_TRUE(absl::StrContains(err_, "MEDEVAL_TEST_EMPTY_KEY is set but empty")) << err_;
  EXPECT_EQ(Run(tmp_ / "suite", {"--api-key-env", "MEDEVAL_TEST_NO_SUCH_KEY"}), 2);
  EXPECT_TRUE(absl::StrContains(err_, "MEDEVAL_TEST_NO_SUCH_KEY is not set")) << err_;

  // A key file's trailing newline is fine.
  testing::WriteText(tmp_ / "one-line.key", "the-key\n");
  EXPECT_EQ(Run(tmp_ / "suite", {"--api-key-file", tmp_ / "one-line.key"}), 0) << err_;
  EXPECT_EQ(Requests(), 1);
}

// --- Clear messages ---------------------------------------------------------

TEST_F(RunInputTest, CommonMistakesGetClearMessages) {
  testing::WriteText(tmp_ / "suite/MedExam.jsonl", Line("q1", 1));
  testing::WriteText(tmp_ / "suite/MedSafety.jsonl", Line("q2", 2));

  EXPECT_EQ(Run(tmp_ / "suite", {"--api-key", "sk-secret-value"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "--api-key-env")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "sk-secret-value")) << err_;

  // https against a plain-http server.
  std::vector<std::string> a = {"run",
                                "--data",
                                tmp_ / "suite",
                                "--model",
                                "m",
                                "--out",
                                tmp_ / "results",
                                "--base-url",
                                absl::StrCat("https://127.0.0.1:", sim_->port(), "/v1")};
  EXPECT_EQ(testing::RunMedeval(a, tmp_.path(), &out_, &err_), 1) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "use http://")) << err_;

  // Names with spaces after the commas are trimmed; the list of available
  // names has no empty entry.
  EXPECT_EQ(Run(tmp_ / "suite", {"--datasets", "MedExam, Nope"}), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "--datasets names Nope not found")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "(available: MedExam, MedSafety)")) << err_;
  ASSERT_EQ(Run(tmp_ / "suite", {"--datasets", "MedExam, MedSafety"}), 0) << err_;

  // A coordinator given as a URL.
  EXPECT_EQ(testing::RunMedeval({"status", "--coordinator", "http://127.0.0.1:7070/"}, tmp_.path(),
                                &out_, &err_),
            2)
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "pass --coordinator 127.0.0.1:7070")) << err_;

  // No key sent to a server that requires one.
  sim::SimOptions o;
  o.api_key = "needed";
  Serve(o);
  EXPECT_EQ(Run(tmp_ / "suite", {"--out", tmp_ / "other"}), 1) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "requires an API key")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "none was sent")) << err_;
}

}  // namespace
}  // namespace medeval
