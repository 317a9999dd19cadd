// `medeval run --batch` end to end: a real medeval process whose worker
// answers through the simulated server's Batch API, checked answer by answer
// against the answer model and the server's own counts.
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/answer_model.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::RunMedeval;

class BatchRunTest : public ::testing::Test {
 protected:
  void Serve(sim::BatchOptions b) {
    sim::SimOptions o;
    o.batch = b;
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
    testing::WriteSyntheticSuite(data_, "MedHC", n_);
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  std::vector<std::string> Args(std::vector<std::string> more = {},
                                const std::string& out = "results") {
    std::vector<std::string> a = {
        "run",   "--data",   data_,     "--model",      "m1",  "--base-url",     Url(),
        "--out", tmp_ / out, "--batch", "--batch-poll", "0.2", "--batch-linger", "0.3"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  int Run(std::vector<std::string> more = {}) {
    return RunMedeval(Args(std::move(more)), tmp_.path(), &out_, &err_);
  }
  // Every answer is the model's, and every question was answered once.
  void CheckAnswers() {
    auto answers = testing::ReadJsonl(tmp_ / "results/m1/MedBench_LLM/MedHC.jsonl");
    ASSERT_EQ(answers.size(), static_cast<size_t>(n_));
    json st = Stats();
    for (int i = 0; i < n_; ++i) {
      EXPECT_EQ(answers[i]["answer"],
                sim::AnswerQuestion("m1", testing::SyntheticQuestion(i), {}).content)
          << i;
      EXPECT_EQ(st["per_question"][sim::QuestionKey(testing::SyntheticQuestion(i))]["answered"], 1)
          << i;
    }
    EXPECT_TRUE(PathExists(tmp_ / "results/m1/MedBench_LLM.zip"));
  }
  int BatchRecords() {
    int n = 0;
    for (const json& r : testing::ReadJsonl(tmp_ / "results/m1/records.jsonl")) {
      for (const json& f : r["flags"]) n += f == "batch" ? 1 : 0;
    }
    return n;
  }

  int n_ = 40;
  testing::TempDir tmp_;
  std::string data_ = tmp_ / "suite";
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(BatchRunTest, EveryQuestionAnsweredThroughOneBatchAtTheBatchPrice) {
  sim::BatchOptions b;
  b.validate_ms = 50;
  b.finalize_ms = 50;
  Serve(b);
  ASSERT_EQ(Run({"--price-input", "2", "--price-output", "8"}), 0) << err_;
  CheckAnswers();
  json st = Stats();
  EXPECT_EQ(st["batch"]["created"], 1);
  EXPECT_EQ(st["batch"]["lines"]["succeeded"], n_);
  EXPECT_EQ(st["requests"], 0) << "nothing was asked online";
  EXPECT_EQ(BatchRecords(), n_);
  json m = json::parse(testing::ReadText(tmp_ / "results/m1/manifest.json"));
  const int64_t in = st["batch"]["tokens"]["prompt"], out = st["batch"]["tokens"]["completion"];
  EXPECT_EQ(m["cost"]["tokens"]["batch_prompt"], in);
  EXPECT_EQ(m["cost"]["tokens"]["batch_completion"], out);
  EXPECT_NEAR(m["cost"]["total"].get<double>(), 0.5 * (in * 2.0 + out * 8.0) / 1e6, 1e-12);
  EXPECT_TRUE(absl::StrContains(out_, "cost ")) << out_;
}

TEST_F(BatchRunTest, SplitsByTheProviderLineLimit) {
  Serve(sim::BatchOptions());
  ASSERT_EQ(Run({"--batch-max-lines", "15"}), 0) << err_;
  CheckAnswers();
  EXPECT_EQ(Stats()["batch"]["created"], 3);  // 40 questions, 15 a batch
  EXPECT_EQ(Stats()["requests"], 0);
}

TEST_F(BatchRunTest, LinesThatFailInTheBatchAreAskedOnline) {
  sim::BatchOptions b;
  b.line_fail_rate = 0.25;
  Serve(b);
  ASSERT_EQ(Run(), 0) << err_;
  CheckAnswers();
  json st = Stats();
  const int64_t failed = st["batch"]["lines"]["failed"];
  EXPECT_GT(failed, 3);
  EXPECT_EQ(st["requests"], failed);  // each failed line once online, nothing else
  EXPECT_EQ(BatchRecords(), n_ - failed);
}

TEST_F(BatchRunTest, AnExpiredBatchLeavesTheRestToTheOnlinePath) {
  sim::BatchOptions b;
  b.lines_per_s = 20;
  b.validate_ms = 0;
  b.expire_s = 1;
  Serve(b);
  ASSERT_EQ(Run(), 0) << err_;
  CheckAnswers();
  json st = Stats();
  EXPECT_EQ(st["batch"]["by_status"]["expired"], 1);
  const int64_t expired = st["batch"]["lines"]["expired"];
  EXPECT_GT(expired, 0);
  EXPECT_EQ(st["requests"], expired);
  EXPECT_EQ(BatchRecords(), n_ - expired);
}

TEST_F(BatchRunTest, KilledWhileTheBatchRunsTheRerunReattachesInsteadOfPayingAgain) {
  sim::BatchOptions b;
  b.lines_per_s = 8;  // 5 s for 40 questions
  b.validate_ms = 0;
  Serve(b);
  testing::Subprocess p;
  std::vector<std::string> argv = Args();
  argv.insert(argv.begin(), testing::MedevalBinary());
  p.Start(argv, tmp_.path());
  ASSERT_TRUE(testing::WaitFor([&] {
    json st = Stats();
    return st["batch"]["by_status"].value("in_progress", 0) == 1 &&
           st["batch"]["lines"]["succeeded"].get<int>() > 0;
  })) << p.err();
  p.Kill(SIGKILL);
  p.Wait();
  ASSERT_EQ(Run(), 0) << err_;
  CheckAnswers();
  json st = Stats();
  EXPECT_EQ(st["batch"]["created"], 1) << "a second batch was paid for";
  EXPECT_EQ(st["requests"], 0);
  for (int i = 0; i < n_; ++i) {
    EXPECT_EQ(st["per_question"][sim::QuestionKey(testing::SyntheticQuestion(i))]["requests"], 1)
        << i;
  }
  EXPECT_EQ(BatchRecords(), n_);
}

TEST_F(BatchRunTest, InterruptCancelsTheBatchWhenAskedTo) {
  sim::BatchOptions b;
  b.lines_per_s = 2;
  b.validate_ms = 0;
  Serve(b);
  for (const char* policy : {"keep", "cancel"}) {
    SCOPED_TRACE(policy);
    testing::Subprocess p;
    std::vector<std::string> argv =
        Args({"--batch-on-exit", policy}, std::string("results-") + policy);
    argv.insert(argv.begin(), testing::MedevalBinary());
    const int before = Stats()["batch"]["created"];
    p.Start(argv, tmp_.path());
    ASSERT_TRUE(testing::WaitFor([&] { return Stats()["batch"]["created"] == before + 1; }))
        << p.err();
    p.Kill(SIGINT);
    EXPECT_EQ(p.Wait(absl::Seconds(60)), 130) << p.err();
    auto list = json::parse(testing::HttpCall("GET", Url() + "/batches?limit=1").body);
    const std::string status = list["data"][0]["status"];
    if (std::string(policy) == "cancel") {
      EXPECT_TRUE(status == "cancelling" || status == "cancelled") << status;
    } else {
      EXPECT_EQ(status, "in_progress");
    }
  }
}

TEST_F(BatchRunTest, ExtraHeadersReachEveryBatchApiCallAndStayOutOfTheLog) {
  sim::SimOptions o;
  o.required_headers = {{"X-Org", "acme"}, {"api-key", "s3cret-batch-key"}};
  sim_ = std::make_unique<sim::SimServer>(o);
  ASSERT_TRUE(sim_->Start().ok());
  testing::WriteSyntheticSuite(data_, "MedHC", n_);
  ASSERT_EQ(
      RunMedeval(Args({"--header", "X-Org: acme", "--header-env", "api-key: BATCH_KEY", "-v"}),
                 tmp_.path(), &out_, &err_, {{"BATCH_KEY", "s3cret-batch-key"}}),
      0)
      << err_;
  CheckAnswers();
  json st = Stats();
  EXPECT_EQ(st["missing_header"], json({{"chat", 0}, {"files", 0}, {"batches", 0}, {"other", 0}}))
      << st["missing_header"].dump();
  EXPECT_EQ(st["batch"]["created"], 1);
  EXPECT_EQ(st["requests"], 0) << "every question answered in the batch";
  EXPECT_EQ(BatchRecords(), n_);
  EXPECT_FALSE(absl::StrContains(err_, "s3cret-batch-key")) << err_;
  EXPECT_FALSE(absl::StrContains(
      testing::ReadText(tmp_ / "results/.medeval/batches/batches-m1.json"), "s3cret"))
      << "a credential in the saved batch state";
}

TEST_F(BatchRunTest, InterruptAsksAtATerminalAndCancelsWhenTold) {
  sim::BatchOptions b;
  b.lines_per_s = 2;
  b.validate_ms = 0;
  Serve(b);
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  testing::Subprocess p;
  std::vector<std::string> argv = Args();
  argv.insert(argv.begin(), testing::MedevalBinary());
  p.set_stdin(slave);
  p.Start(argv, tmp_.path());
  ASSERT_TRUE(testing::WaitFor([&] {
    json st = Stats();
    return st["batch"]["by_status"].value("in_progress", 0) == 1;
  })) << p.err();
  p.Kill(SIGINT);
  ASSERT_TRUE(testing::WaitFor([&] { return absl::StrContains(p.err(), "[k] "); })) << p.err();
  EXPECT_TRUE(std::regex_search(
      p.err(), std::regex("1 batch is still running at the provider[^\n]*\n  m1: batch_[0-9a-f]+: "
                          "(validating|in_progress) [0-9]+/40, waited")))
      << p.err();
  ASSERT_EQ(::write(master, "c\n", 2), 2);
  EXPECT_EQ(p.Wait(absl::Seconds(60)), 130) << p.err();
  ::close(master);
  ::close(slave);
  auto list = json::parse(testing::HttpCall("GET", Url() + "/batches?limit=1").body);
  const std::string status = list["data"][0]["status"];
  EXPECT_TRUE(status == "cancelling" || status == "cancelled") << status << p.err();
}

TEST_F(BatchRunTest, InterruptWithoutATerminalKeepsTheBatchesWithoutAsking) {
  sim::BatchOptions b;
  b.lines_per_s = 2;
  b.validate_ms = 0;
  Serve(b);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  testing::Subprocess p;
  std::vector<std::string> argv = Args();
  argv.insert(argv.begin(), testing::MedevalBinary());
  p.set_stdin(devnull);
  p.Start(argv, tmp_.path());
  ::close(devnull);
  ASSERT_TRUE(testing::WaitFor([&] { return Stats()["batch"]["created"] == 1; })) << p.err();
  p.Kill(SIGINT);
  EXPECT_EQ(p.Wait(absl::Seconds(60)), 130) << p.err();
  EXPECT_FALSE(absl::StrContains(p.err(), "Cancel them")) << p.err();
  auto list = json::parse(testing::HttpCall("GET", Url() + "/batches?limit=1").body);
  EXPECT_EQ(list["data"][0]["status"], "in_progress");
}

}  // namespace
}  // namespace medeval
