// `medeval run` (and a worker with `status`) against servers whose 200
// answers are not plain answers: nothing that is not an answer reaches an
// upload file, cut-off answers and swapped models are told, credentials
// never reach a saved file, and bad bodies fail with errors that say why.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using sim::ContentFault;
using testing::RunMedeval;

class AnswersTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o = sim::SimOptions()) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  std::vector<std::string> Args(std::vector<std::string> extra = {},
                                const std::string& out = "results") {
    std::vector<std::string> a = {
        "run",   "--data",   testing::SamplesDir(), "--model", "m", "--base-url", Url(),
        "--out", tmp_ / out, "--retry-base-ms",     "5"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  int Run(std::vector<std::string> extra = {}, std::map<std::string, std::string> env = {}) {
    return RunMedeval(Args(std::move(extra)), tmp_.path(), &out_, &err_, env);
  }
  json Manifest() { return json::parse(testing::ReadText(tmp_ / "results/m/manifest.json")); }
  // Every regular file under `dir`, recursively.
  std::vector<std::string> FilesUnder(const std::string& dir) {
    std::vector<std::string> out;
    auto names = ListDir(dir);
    if (!names.ok()) return out;
    for (const std::string& n : *names) {
      const std::string p = JoinPath(dir, n);
      auto sub = FilesUnder(p);
      if (ListDir(p).ok()) {
        out.insert(out.end(), sub.begin(), sub.end());
      } else {
        out.push_back(p);
      }
    }
    return out;
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(AnswersTest, ResponsesWithoutAnAnswerFailTheQuestionAndARerunAsksAgain) {
  sim::SimOptions o;
  for (ContentFault f : {ContentFault::kEmpty, ContentFault::kWhitespace,
                         ContentFault::kReasoningOnly, ContentFault::kThinkOnly}) {
    o.responses.rates[static_cast<size_t>(f)] = 0.25;
  }
  Serve(o);
  EXPECT_EQ(Run({"--max-attempts", "2"}), 1) << err_;
  json m = Manifest();
  EXPECT_EQ(m["counts"]["answered"], 0);
  EXPECT_EQ(m["counts"]["failed"], 43);
  EXPECT_FALSE(PathExists(tmp_ / "results/m/MedBench_LLM.zip"));
  EXPECT_TRUE(absl::StrContains(err_, "empty answer")) << err_;
  // No upload file holds an answer made of nothing.
  for (const auto& r : testing::ReadJsonl(tmp_ / "results/m/records.jsonl")) {
    EXPECT_EQ(r["status"], "failed");
    EXPECT_TRUE(r["answer"].is_null());
  }
  const std::string exam = testing::ReadText(tmp_ / "results/m/MedBench_LLM/MedExam.jsonl");
  EXPECT_EQ(exam, testing::ReadText(JoinPath(testing::SamplesDir(), "MedExam.jsonl")));

  // A healthy server: every question is asked again, and answered.
  Serve();
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_EQ(Stats()["requests"], 43);
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "results/m", "m", {});
}

TEST_F(AnswersTest, CutOffAnswersAreKeptAndListedPerDataset) {
  Serve();
  ASSERT_EQ(Run({"--max-tokens", "3"}), 0) << err_;
  json m = Manifest();
  const int truncated = m["counts"]["truncated"].get<int>();
  EXPECT_GT(truncated, 0);
  EXPECT_EQ(m["counts"]["answered"], 43);
  int listed = 0;
  for (const auto& [ds, n] : m["truncated"].items()) listed += n.get<int>();
  EXPECT_EQ(listed, truncated);
  EXPECT_TRUE(m["truncated"].contains("SMDoc")) << m["truncated"];
  EXPECT_TRUE(absl::StrContains(err_, "cut off at max_tokens")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "SMDoc ")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "Raise or unset --max-tokens")) << err_;
  int flagged = 0;
  for (const auto& r : testing::ReadJsonl(tmp_ / "results/m/records.jsonl")) {
    if (r["finish_reason"] != "length") continue;
    ++flagged;
    EXPECT_NE(std::find(r["flags"].begin(), r["flags"].end(), "truncated"), r["flags"].end());
    EXPECT_EQ(r["status"], "answered");
  }
  EXPECT_EQ(flagged, truncated);
}

TEST_F(AnswersTest, WhatTheServerServedIsRecordedAndASwapIsWarned) {
  sim::SimOptions o;
  o.responses.served_model = "cheaper-model";
  Serve(o);
  ASSERT_EQ(Run(), 0) << err_;
  json m = Manifest();
  EXPECT_EQ(m["served_models"], json::array({"cheaper-model"}));
  ASSERT_TRUE(m["warnings"].is_array());
  EXPECT_TRUE(absl::StrContains(m["warnings"].dump(), "served by model 'cheaper-model'"))
      << m["warnings"];
  EXPECT_TRUE(absl::StrContains(err_, "warning: 43 answers were served by model 'cheaper-model'"))
      << err_;
  std::set<std::string> ids;
  for (const auto& r : testing::ReadJsonl(tmp_ / "results/m/records.jsonl")) {
    EXPECT_EQ(r["served_model"], "cheaper-model");
    EXPECT_EQ(r["requested_model"], "m");
    EXPECT_EQ(r["system_fingerprint"], "fp_medeval_sim");
    ids.insert(r["request_id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), 43u);
  EXPECT_EQ(ids.count(""), 0u);

  // The requested model served: no warning.
  Serve();
  ASSERT_EQ(RunMedeval(Args({}, "results2"), tmp_.path(), &out_, &err_), 0) << err_;
  json m2 = json::parse(testing::ReadText(tmp_ / "results2/m/manifest.json"));
  EXPECT_EQ(m2["served_models"], json::array({"m"}));
  EXPECT_EQ(m2["warnings"], json::array());
  EXPECT_FALSE(absl::StrContains(err_, "served by model")) << err_;
}

TEST_F(AnswersTest, CredentialHeadersNeverReachASavedFileOrALog) {
  sim::SimOptions o;
  o.api_key = "sk-header-secret-4242";
  Serve(o);
  ASSERT_EQ(Run({"-v", "--header", "Authorization: Bearer sk-header-secret-4242", "--header",
                 "X-Team: eval", "--header-env", "X-Gateway-Token: GATEWAY_TOKEN"},
                {{"GATEWAY_TOKEN", "gw-token-9876"}}),
            0)
      << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "results/m", "m", {});
  EXPECT_EQ(Manifest()["request"]["extra_headers"], json({{"X-Team", "eval"}}));
  const std::vector<std::string> files = FilesUnder(tmp_ / "results");
  EXPECT_GT(files.size(), 5u);
  for (const std::string& f : files) {
    const std::string text = testing::ReadText(f);
    EXPECT_FALSE(absl::StrContains(text, "sk-header-secret-4242")) << f;
    EXPECT_FALSE(absl::StrContains(text, "gw-token-9876")) << f;
  }
  EXPECT_FALSE(absl::StrContains(err_ + out_, "sk-header-secret-4242"));
  EXPECT_FALSE(absl::StrContains(err_ + out_, "gw-token-9876"));

  // An unset variable is named, with the header; nothing is asked.
  EXPECT_EQ(Run({"--header-env", "X-Gateway-Token: NOT_SET_ANYWHERE"}), 2);
  EXPECT_TRUE(absl::StrContains(err_, "NOT_SET_ANYWHERE is not set")) << err_;
}

TEST_F(AnswersTest, InvalidUtf8IsKeptWithReplacementsAndFlagged) {
  sim::SimOptions o;
  o.responses.rates[static_cast<size_t>(ContentFault::kInvalidUtf8)] = 1;
  Serve(o);
  ASSERT_EQ(Run({"--max-attempts", "1"}), 0) << err_;
  for (const auto& r : testing::ReadJsonl(tmp_ / "results/m/records.jsonl")) {
    EXPECT_EQ(r["status"], "answered");
    EXPECT_TRUE(absl::StartsWith(r["answer"].get<std::string>(), "\uFFFD")) << r["answer"];
    EXPECT_NE(std::find(r["flags"].begin(), r["flags"].end(), "invalid_utf8"), r["flags"].end());
  }
}

TEST_F(AnswersTest, OversizedAndMismatchedBodiesFailSayingWhy) {
  sim::SimOptions o;
  o.responses.rates[static_cast<size_t>(ContentFault::kHuge)] = 1;
  o.responses.huge_bytes = 300000;
  Serve(o);
  EXPECT_EQ(Run({"--max-attempts", "2", "--max-response-bytes", "100000", "--datasets", "MedHG"}),
            1);
  EXPECT_TRUE(absl::StrContains(err_, "response too large")) << err_;
  // The default limit (16 MiB) lets the same answers through.
  ASSERT_EQ(Run({"--datasets", "MedHG"}), 0) << err_;

  sim::SimOptions bad;
  bad.responses.bad_gzip_rate = 1;
  Serve(bad);
  EXPECT_EQ(RunMedeval(Args({"--max-attempts", "2", "--datasets", "MedTerm"}, "results3"),
                       tmp_.path(), &out_, &err_),
            1);
  EXPECT_TRUE(absl::StrContains(err_, "Content-Encoding 'gzip'")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "connection error")) << err_;
}

TEST_F(AnswersTest, StatusShowsTheCutOffCountAndSubmitRefusesCredentials) {
  Serve();
  testing::Cluster cluster(tmp_ / "cluster");
  cluster.StartCoordinator();
  cluster.StartWorker("w1", {"--model", "m", "--base-url", Url(), "--retry-base-ms", "5"});
  std::string out, err;
  EXPECT_EQ(cluster.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--header",
                         "X-Api-Key: sk-never-stored"},
                        &out, &err),
            2);
  EXPECT_TRUE(absl::StrContains(err, "is a credential")) << err;
  EXPECT_FALSE(absl::StrContains(err, "sk-never-stored")) << err;
  ASSERT_EQ(
      cluster.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--max-tokens", "3"},
                  &out, &err),
      0)
      << err;
  std::vector<std::string> ids = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_TRUE(cluster.WaitRunFinished(ids[0]));
  ASSERT_EQ(cluster.Cli({"status", ids[0], "--json"}, &out, &err), 0) << err;
  json st = json::parse(out);
  EXPECT_GT(st["runs"][0]["truncated"].get<int>(), 0) << out;
  ASSERT_EQ(cluster.Cli({"status", ids[0]}, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, "TRUNCATED")) << out;
  EXPECT_TRUE(absl::StrContains(out, "cut off at max_tokens")) << out;
}

}  // namespace
}  // namespace medeval
