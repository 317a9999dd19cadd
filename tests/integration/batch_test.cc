// The OpenAI batch file format end to end: `medeval batch export` writes the
// requests the online path sends, a real simulated server answers them as a
// Batch API, `medeval batch import` turns its output into a result folder,
// and a later `medeval run` asks only what the batch did not answer. Cost
// figures are checked against the server's own token counts.
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "local/run_job.h"
#include "common/cost.h"
#include "common/file_util.h"
#include "common/multipart.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "sim/answer_model.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"
#include "worker/chat_backend.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::HttpCall;
using testing::RunMedeval;

class BatchFilesTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1");
  }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  int Medeval(std::vector<std::string> args) { return RunMedeval(args, tmp_.path(), &out_, &err_); }
  // Runs `input` through the sim's Batch API; returns (output, error) files.
  std::pair<std::string, std::string> RunBatch(const std::string& input) {
    std::string ct;
    std::string body =
        BuildMultipart({{"purpose", "", "", "batch"}, {"file", "requests.jsonl", "", input}}, &ct);
    auto up = HttpCall("POST", base_ + "/files", body, {"Content-Type: " + ct});
    EXPECT_EQ(up.status, 200) << up.body;
    json req = {{"input_file_id", json::parse(up.body)["id"]},
                {"endpoint", "/v1/chat/completions"},
                {"completion_window", "24h"}};
    auto created =
        HttpCall("POST", base_ + "/batches", req.dump(), {"Content-Type: application/json"});
    EXPECT_EQ(created.status, 200) << created.body;
    const std::string id = json::parse(created.body)["id"];
    json b;
    EXPECT_TRUE(testing::WaitFor([&] {
      b = json::parse(HttpCall("GET", base_ + "/batches/" + id).body);
      return b["status"] == "completed";
    })) << b.dump();
    auto content = [&](const json& file) -> std::string {
      if (file.is_null()) return "";
      return HttpCall("GET", base_ + "/files/" + file.get<std::string>() + "/content").body;
    };
    return {content(b["output_file_id"]), content(b["error_file_id"])};
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string base_;
  std::string out_, err_;
};

TEST_F(BatchFilesTest, ExportImportRoundTripThenRunAsksOnlyTheRest) {
  const int n = 40;
  const std::string data = tmp_ / "suite";
  testing::WriteSyntheticSuite(data, "MedHC", n);
  sim::SimOptions so;
  so.batch.lines_per_s = 0;
  so.batch.validate_ms = 0;
  so.batch.finalize_ms = 0;
  so.batch.line_fail_rate = 0.2;
  Serve(so);

  // Export: the body of every line is the online request, byte for byte.
  ASSERT_EQ(Medeval({"batch", "export", "--data", data, "--model", "m1"}), 0) << err_;
  const std::string requests = out_;
  std::vector<absl::string_view> lines = absl::StrSplit(requests, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    json j = json::parse(lines[i]);
    EXPECT_EQ(j["custom_id"], absl::StrCat("MedHC:", i + 1));
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["url"], "/v1/chat/completions");
    v1::Lease lease;
    lease.set_question(testing::SyntheticQuestion(i));
    EXPECT_TRUE(absl::StrContains(
        lines[i],
        absl::StrCat("\"body\":", BuildChatRequest("m1", DefaultRequestParams(), lease), "}")))
        << lines[i];
  }

  auto [output, errors] = RunBatch(requests);
  testing::WriteText(tmp_ / "output.jsonl", output);
  testing::WriteText(tmp_ / "errors.jsonl", errors);
  std::set<std::string> failed_ids;
  for (absl::string_view l : absl::StrSplit(errors, '\n', absl::SkipEmpty())) {
    failed_ids.insert(json::parse(l)["custom_id"].get<std::string>());
  }
  ASSERT_GT(failed_ids.size(), 2u);
  ASSERT_LT(failed_ids.size(), static_cast<size_t>(n));
  const json batch_tokens = Stats()["batch"]["tokens"];

  // Import: a result folder with every batch answer, the failed lines listed.
  const std::string results = tmp_ / "results";
  ASSERT_EQ(Medeval({"batch", "import", "--data", data, "--model", "m1", tmp_ / "output.jsonl",
                     tmp_ / "errors.jsonl", "--out", results, "--price-input", "2",
                     "--price-output", "8"}),
            1)
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "questions failed")) << err_;
  const std::string folder = results + "/m1";
  json m = json::parse(testing::ReadText(folder + "/manifest.json"));
  EXPECT_EQ(m["counts"]["answered"], n - static_cast<int>(failed_ids.size()));
  EXPECT_EQ(m["counts"]["failed"], failed_ids.size());
  std::set<std::string> listed;
  for (const json& f : m["failed"]) {
    listed.insert(absl::StrCat(f["dataset"].get<std::string>(), ":", f["line"].get<int>()));
    EXPECT_TRUE(absl::StrContains(f["error"].get<std::string>(), "HTTP 500")) << f.dump();
  }
  EXPECT_EQ(listed, failed_ids);
  EXPECT_FALSE(PathExists(folder + "/MedBench_LLM.zip")) << "incomplete: no zip";
  auto answers = testing::ReadJsonl(folder + "/MedBench_LLM/MedHC.jsonl");
  ASSERT_EQ(answers.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const bool failed = failed_ids.count(absl::StrCat("MedHC:", i + 1)) > 0;
    EXPECT_EQ(answers[i]["answer"],
              failed ? "" : sim::AnswerQuestion("m1", testing::SyntheticQuestion(i), {}).content)
        << i;
  }
  // Cost: the batch's tokens as the server counted them, at half price.
  ASSERT_TRUE(m.contains("cost")) << m.dump(2);
  const int64_t bin = batch_tokens["prompt"], bout = batch_tokens["completion"];
  EXPECT_EQ(m["cost"]["tokens"]["batch_prompt"], bin);
  EXPECT_EQ(m["cost"]["tokens"]["batch_completion"], bout);
  EXPECT_EQ(m["cost"]["tokens"]["online_prompt"], 0);
  EXPECT_NEAR(m["cost"]["total"].get<double>(), 0.5 * (bin * 2.0 + bout * 8.0) / 1e6, 1e-12);

  // A later run with the same settings asks only the failed questions, online.
  ASSERT_EQ(Medeval({"run", "--data", data, "--model", "m1", "--base-url", base_, "--out", results,
                     "--price-input", "2", "--price-output", "8"}),
            0)
      << err_;
  json st = Stats();
  EXPECT_EQ(st["requests"], failed_ids.size());
  // Each question answered once; a failed batch line was one request, its
  // online retry the other.
  for (int i = 0; i < n; ++i) {
    const json& q = st["per_question"][sim::QuestionKey(testing::SyntheticQuestion(i))];
    EXPECT_EQ(q["answered"], 1) << i;
    EXPECT_EQ(q["requests"], failed_ids.count(absl::StrCat("MedHC:", i + 1)) ? 2 : 1) << i;
  }
  EXPECT_TRUE(absl::StrContains(out_, "cost ")) << out_;
  m = json::parse(testing::ReadText(folder + "/manifest.json"));
  EXPECT_EQ(m["counts"]["answered"], n);
  EXPECT_TRUE(PathExists(folder + "/MedBench_LLM.zip"));
  const int64_t oin = st["tokens"]["prompt"], oout = st["tokens"]["completion"];
  EXPECT_EQ(m["cost"]["tokens"]["online_prompt"], oin);
  EXPECT_EQ(m["cost"]["tokens"]["online_completion"], oout);
  const double total = (oin * 2.0 + oout * 8.0) / 1e6 + 0.5 * (bin * 2.0 + bout * 8.0) / 1e6;
  EXPECT_NEAR(m["cost"]["total"].get<double>(), total, 1e-12);
  answers = testing::ReadJsonl(folder + "/MedBench_LLM/MedHC.jsonl");
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(answers[i]["answer"],
              sim::AnswerQuestion("m1", testing::SyntheticQuestion(i), {}).content);
  }

  // compare shows the cost.
  ASSERT_EQ(Medeval({"compare", folder, "--markdown", tmp_ / "report.md"}), 0) << err_;
  EXPECT_TRUE(absl::StrContains(testing::ReadText(tmp_ / "report.md"), "| cost |"));
  EXPECT_TRUE(absl::StrContains(testing::ReadText(tmp_ / "report.md"), FormatCost(total)))
      << testing::ReadText(tmp_ / "report.md");
}

TEST_F(BatchFilesTest, ImportRefusesUnusableLinesWithTheirPlace) {
  const std::string data = tmp_ / "suite";
  testing::WriteSyntheticSuite(data, "MedHC", 3);
  testing::WriteText(tmp_ / "out.jsonl",
                     "{\"custom_id\":\"MedHC:1\",\"response\":null,\"error\":{\"code\":\"x\","
                     "\"message\":\"y\"}}\nnot json\n{\"custom_id\":\"Other:9\",\"error\":{}}\n");
  ASSERT_EQ(Medeval({"batch", "import", "--data", data, "--model", "m1", tmp_ / "out.jsonl",
                     "--out", tmp_ / "results"}),
            2);
  EXPECT_TRUE(absl::StrContains(err_, "out.jsonl:2: not a JSON object")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "out.jsonl:3: custom_id 'Other:9' is not a question"))
      << err_;
  EXPECT_FALSE(PathExists(tmp_ / "results/m1/manifest.json"));
}

TEST_F(BatchFilesTest, ImportChecksTheOutputFolderAsRunDoes) {
  const int n = 6;
  const std::string data = tmp_ / "suite";
  testing::WriteSyntheticSuite(data, "MedHC", n);
  sim::SimOptions so;
  so.batch.lines_per_s = 0;
  so.batch.validate_ms = 0;
  so.batch.finalize_ms = 0;
  Serve(so);
  auto import_args = [&](std::vector<std::string> more) {
    std::vector<std::string> a = {
        "batch", "import",        "--data", data, "--model", "m1", tmp_ / "output.jsonl",
        "--out", tmp_ / "results"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  ASSERT_EQ(Medeval({"batch", "export", "--data", data, "--model", "m1"}), 0) << err_;
  testing::WriteText(tmp_ / "output.jsonl", RunBatch(out_).first);
  ASSERT_EQ(Medeval(import_args({})), 0) << err_;
  const std::string manifest = testing::ReadText(tmp_ / "results/m1/manifest.json");

  // Another run's result (other settings) is not replaced silently ...
  ASSERT_EQ(Medeval(import_args({"--temperature", "0.5"})), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, tmp_ / "results/m1 holds the result of another run")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "pass --replace to replace it")) << err_;
  EXPECT_EQ(testing::ReadText(tmp_ / "results/m1/manifest.json"), manifest);
  // ... and `run` says the same about it.
  const std::string import_err = err_;
  ASSERT_EQ(Medeval({"run", "--data", data, "--model", "m1", "--base-url", base_, "--out",
                     tmp_ / "results", "--temperature", "0.5"}),
            2);
  EXPECT_EQ(err_, import_err);
  // ... but with --replace.
  ASSERT_EQ(Medeval(import_args({"--temperature", "0.5", "--replace"})), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "replacing the result in")) << err_;
  EXPECT_NE(testing::ReadText(tmp_ / "results/m1/manifest.json"), manifest);

  // A file where the folder should be: the same message as `run`.
  testing::WriteText(tmp_ / "afile", "x");
  ASSERT_EQ(Medeval({"batch", "import", "--data", data, "--model", "m1", tmp_ / "output.jsonl",
                     "--out", tmp_ / "afile"}),
            2);
  const std::string file_err = err_;
  ASSERT_EQ(Medeval({"run", "--data", data, "--model", "m1", "--base-url", base_, "--out",
                     tmp_ / "afile"}),
            2);
  EXPECT_EQ(err_, file_err);
  EXPECT_EQ(testing::ReadText(tmp_ / "afile"), "x");
}

}  // namespace
}  // namespace medeval
