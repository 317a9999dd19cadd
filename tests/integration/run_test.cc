// `medeval run` end to end: a real medeval process, its embedded coordinator
// and workers talking gRPC on loopback, and a real simulated model server.
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/records.h"
#include "common/sha256.h"
#include "common/suite.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::RunMedeval;

class RunTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o = sim::SimOptions()) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
    style_ = o.style;
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  int Run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), "run");
    return RunMedeval(args, tmp_.path(), &out_, &err_, env);
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  sim::AnswerStyle style_;
  std::string out_, err_;
};

class SharedSuiteRunTest : public RunTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(SharedSuiteRunTest, EveryQuestionAnsweredInPlatformLayout) {
  const std::string data = testing::SharedMedbench(GetParam());
  if (data.empty()) GTEST_SKIP() << "../shared/medbench is absent";
  Serve();
  ASSERT_EQ(Run({"--data", data, "--model", "org/model-x", "--base-url", Url(), "--out",
                 tmp_ / "results", "--workers", "2", "--concurrency", "16"}),
            0)
      << err_;
  CheckRunOutputs(data, tmp_ / "results/org_model-x", "org/model-x", style_);
  EXPECT_TRUE(absl::StrContains(out_, "(upload this to MedBench)")) << out_;
  EXPECT_EQ(Stats()["requests"], Stats()["completed"]);
}

INSTANTIATE_TEST_SUITE_P(Tracks, SharedSuiteRunTest,
                         ::testing::Values("v4/LLM", "v4/Agent", "legacy/LLM"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = absl::ascii_isalnum(c) ? c : '_';
                           return n;
                         });

TEST_F(RunTest, SampleSuiteThroughTheDemoCommand) {
  std::string out, err;
  ASSERT_EQ(
      RunMedeval({"demo", "--out", tmp_ / "results", "--latency-ms", "1"}, tmp_.path(), &out, &err),
      0)
      << err;
  auto zip = ReadZip(tmp_ / "results/medeval-sim/MedBench_LLM.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(zip->size(), 7u);  // the folder and six datasets
}

TEST_F(RunTest, InvalidLinesAreAllReportedAndNothingIsAsked) {
  Serve();
  const std::string data = tmp_ / "suite";
  testing::WriteText(JoinPath(data, "A.jsonl"), R"({"question": "q1", "other": {"id": 1}})"
                                                "\n{\"question\": \"q2\"}\n");
  testing::WriteText(JoinPath(data, "B.jsonl"),
                     "not json\n"
                     R"({"question": "q3", "other": {"id": 3}})"
                     "\n");
  EXPECT_EQ(Run({"--data", data, "--model", "m", "--base-url", Url(), "--out", tmp_ / "results",
                 "--track", "v4-llm"}),
            2);
  EXPECT_TRUE(absl::StrContains(err_, JoinPath(data, "A.jsonl") + ":2: missing \"other\"")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, JoinPath(data, "B.jsonl") + ":1: invalid JSON")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "2 invalid input lines in 2 files")) << err_;
  EXPECT_EQ(Stats()["requests"], 0);

  // "not json" cannot be an answer line: the questions are asked, no zip is
  // written and the line is named.
  EXPECT_EQ(Run({"--data", data, "--model", "m", "--base-url", Url(), "--out", tmp_ / "results",
                 "--skip-invalid", "--track", "v4-llm"}),
            1)
      << err_;
  EXPECT_EQ(Stats()["requests"], 2);
  EXPECT_TRUE(absl::StrContains(err_, JoinPath(data, "B.jsonl") + ":1")) << err_;
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));
  json m = json::parse(testing::ReadText(tmp_ / "results/m/manifest.json"));
  EXPECT_EQ(m["counts"]["skipped_invalid"], 2);
  EXPECT_EQ(m["skipped"][0]["path"], "A.jsonl");
  EXPECT_EQ(m["skipped"][0]["line"], 2);
  // The skipped JSON line is kept in place (it held no answer).
  EXPECT_EQ(SplitLines(testing::ReadText(tmp_ / "results/m/MedBench_LLM/A.jsonl"))[1],
            R"({"question": "q2"})");
}

TEST_F(RunTest, TransientFaultsAreRetriedAndNoAnswerIsWrong) {
  sim::SimOptions o;
  o.fail_rate = 0.1;
  o.ratelimit_rate = 0.05;
  o.retry_after_s = 0;
  o.drop_rate = 0.05;
  o.garbage_rate = 0.05;
  o.hang_rate = 0.03;
  Serve(o);
  ASSERT_EQ(
      Run({"--data", testing::SamplesDir(), "--model", "m", "--base-url", Url(), "--out",
           tmp_ / "results", "--timeout", "1", "--max-attempts", "20", "--retry-base-ms", "5"}),
      0)
      << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "results/m", "m", style_);
  json s = Stats();
  int faults = 0;
  for (auto& [k, v] : s["faults"].items()) faults += v.get<int>();
  EXPECT_GT(faults, 0);
  json m = json::parse(testing::ReadText(tmp_ / "results/m/manifest.json"));
  EXPECT_GT(m["counts"]["attempts"].get<int>(), 43);
}

TEST_F(RunTest, ARefusedKeyStopsTheRunQuickly) {
  sim::SimOptions o;
  o.api_key = "the-right-key";
  Serve(o);
  std::vector<std::string> args = {"--data", testing::SamplesDir(), "--model",
                                   "m",      "--base-url",          Url(),
                                   "--out",  tmp_ / "results"};
  EXPECT_EQ(Run(args, {{"API_TOKEN", "a-wrong-key"}}), 1);
  EXPECT_TRUE(absl::StrContains(err_, "refused the API key")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "a-wrong-key"));
  EXPECT_EQ(Stats()["requests"], 0);  // the probe caught it

  // Without the probe the workers stop at the first 401 instead of trying every question.
  args.push_back("--no-probe");
  EXPECT_EQ(Run(args, {{"API_TOKEN", "a-wrong-key"}}), 1);
  EXPECT_TRUE(absl::StrContains(err_, "HTTP 401")) << err_;
  EXPECT_LE(Stats()["requests"].get<int>(), 2 * 16);
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));

  // The right key through the old script's variables.
  EXPECT_EQ(RunMedeval({"run", "--data", testing::SamplesDir(), "--out", tmp_ / "results"},
                       tmp_.path(), &out_, &err_,
                       {{"MODEL_NAME", "m"}, {"API_URL", Url()}, {"API_TOKEN", "the-right-key"}}),
            0)
      << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "results/m", "m", style_);
}

TEST_F(RunTest, FailedQuestionsAreListedAndOnlyTheyAreAskedAgain) {
  sim::SimOptions bad;
  bad.fail_rate = 0.5;
  Serve(bad);
  std::vector<std::string> args = {"--data", testing::SamplesDir(), "--model",        "m",
                                   "--out",  tmp_ / "results",      "--max-attempts", "1"};
  args.push_back("--base-url");
  args.push_back(Url());
  EXPECT_EQ(Run(args), 1);
  json m = json::parse(testing::ReadText(tmp_ / "results/m/manifest.json"));
  const int failed = m["counts"]["failed"].get<int>();
  ASSERT_GT(failed, 0);
  EXPECT_EQ(m["complete"], false);
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));
  EXPECT_TRUE(absl::StrContains(err_, "questions failed")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "HTTP 500: simulated server error")) << err_;

  // The same command against a healthy server: only the failed ones are asked.
  Serve();
  args.back() = Url();
  ASSERT_EQ(Run(args), 0) << err_;
  EXPECT_EQ(Stats()["requests"].get<int>(), failed);
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "results/m", "m", style_);
}

TEST_F(RunTest, UnreachableEndpointFailsAtOnce) {
  EXPECT_EQ(Run({"--data", testing::SamplesDir(), "--model", "m", "--base-url",
                 absl::StrCat("http://127.0.0.1:", testing::FreePort(), "/v1"), "--out",
                 tmp_ / "results"}),
            1);
  EXPECT_TRUE(absl::StrContains(err_, "cannot reach the model server")) << err_;
}

TEST_F(RunTest, MissingSettingsAreBadInput) {
  EXPECT_EQ(Run({"--data", testing::SamplesDir(), "--base-url", "http://127.0.0.1:1/v1"}), 2);
  EXPECT_TRUE(absl::StrContains(err_, "no model")) << err_;
  EXPECT_EQ(Run({"--data", testing::SamplesDir(), "--model", "m"}), 2);
  EXPECT_TRUE(absl::StrContains(err_, "no endpoint")) << err_;
  EXPECT_EQ(Run({"--data", tmp_ / "nowhere", "--model", "m", "--base-url", "http://h/v1"}), 2);
  EXPECT_TRUE(absl::StrContains(err_, "not a directory")) << err_;
  EXPECT_EQ(Run({"--data", testing::SamplesDir(), "--model", "m", "--base-url", "localhost:8000"}),
            2);
  EXPECT_TRUE(absl::StrContains(err_, "must start with http://")) << err_;
}

}  // namespace
}  // namespace medeval
