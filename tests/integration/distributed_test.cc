// Distributed mode with real processes: a coordinator service, workers that
// join and die, runs submitted and fetched through the CLI.
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "coordinator/journal.h"
#include "gtest/gtest.h"
#include "proto/medeval.pb.h"
#include "sim/answer_model.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

class DistributedTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string SimUrl() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  std::vector<std::string> WorkerArgs(const std::string& model, int concurrency = 4) {
    return {"--model",         model,
            "--base-url",      SimUrl(),
            "--concurrency",   std::to_string(concurrency),
            "--retry-base-ms", "10"};
  }
  int Completed() { return json::parse(sim_->StatsJson())["completed"].get<int>(); }
  // Journaled question indexes of the only run in the state directory.
  std::set<uint32_t> Journaled() {
    std::set<uint32_t> out;
    auto runs = ListDir(JoinPath(cluster_.state_dir(), "runs"));
    EXPECT_TRUE(runs.ok() && runs->size() == 1);
    JournalReplay replay;
    auto f = JournalFile::Open(
        JoinPath(JoinPath(JoinPath(cluster_.state_dir(), "runs"), (*runs)[0]), "journal"),
        (*runs)[0],
        [&](uint64_t, absl::string_view p) {
          v1::JournalEntry e;
          if (e.ParseFromArray(p.data(), static_cast<int>(p.size())) && e.has_answer()) {
            out.insert(e.index());
          }
        },
        &replay);
    EXPECT_TRUE(f.ok()) << f.status();
    return out;
  }

  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
  std::unique_ptr<sim::SimServer> sim_;
};

TEST_F(DistributedTest, SubmitStatusFetchThroughTheCli) {
  Serve(sim::SimOptions());
  cluster_.StartCoordinator();
  cluster_.StartWorker("w1", WorkerArgs("model-a"));
  std::string out, err;
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "model-a"}, &out, &err),
      0)
      << err;
  // Only the run id on stdout, so scripts can capture it.
  std::vector<std::string> ids = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(ids.size(), 1u) << out;
  const std::string run = ids[0];
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  ASSERT_EQ(cluster_.Cli({"status", run}, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, run)) << out;
  EXPECT_TRUE(absl::StrContains(out, "done")) << out;
  EXPECT_TRUE(absl::StrContains(out, "43/43")) << out;
  EXPECT_TRUE(absl::StrContains(out, "w1")) << out;
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "fetched"}, &out, &err), 0) << err;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "fetched/model-a", "model-a", sim::AnswerStyle());
  EXPECT_EQ(cluster_.Cli({"status", "no-such-run"}, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "no run no-such-run")) << err;
}

TEST_F(DistributedTest, FetchOfAnUnfinishedRunExplains) {
  Serve(sim::SimOptions());
  cluster_.StartCoordinator();  // no workers: nothing progresses
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m"}, &out, &err),
            0);
  const std::string run(absl::StripAsciiWhitespace(out));
  EXPECT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "f"}, &out, &err), 1);
  EXPECT_TRUE(absl::StrContains(err, "is not finished (0/43 settled")) << err;
}

TEST_F(DistributedTest, AKilledWorkerLosesItsLeasesAndTheRunCompletes) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.capacity = 8;
  Serve(o);
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", 400);
  cluster_.StartCoordinator({"--heartbeat-timeout", "5"});
  cluster_.StartWorker("doomed", WorkerArgs("m"));
  cluster_.StartWorker("survivor", WorkerArgs("m"));
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m"}, &out, &err), 0);
  const std::string run(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(testing::WaitFor([&] { return Completed() >= 100; }));
  cluster_.worker("doomed").Kill(SIGKILL);
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  CheckRunOutputs(tmp_ / "suite", tmp_ / "out/m", "m", o.style);
  auto records = testing::ReadJsonl(tmp_ / "out/m/records.jsonl");
  std::set<std::string> workers;
  for (const auto& r : records) workers.insert(r["worker"]);
  EXPECT_EQ(workers, (std::set<std::string>{"doomed", "survivor"}));
}

TEST_F(DistributedTest, AKilledCoordinatorRestartsAndLosesNothing) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.capacity = 8;
  Serve(o);
  const int n = 500;
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
  cluster_.StartCoordinator({"--startup-grace", "2"});
  cluster_.StartWorker("w1", WorkerArgs("m"));
  cluster_.StartWorker("w2", WorkerArgs("m"));
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m"}, &out, &err), 0);
  const std::string run(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(testing::WaitFor([&] { return Completed() >= 150; }));
  cluster_.KillCoordinator(SIGKILL);
  EXPECT_EQ(cluster_.WaitCoordinator(), 128 + SIGKILL);
  const std::set<uint32_t> journaled = Journaled();
  ASSERT_GE(journaled.size(), 100u);
  const json before = json::parse(sim_->StatsJson())["per_question"];

  // Same state directory and port; the workers find it again by themselves.
  cluster_.StartCoordinator({"--startup-grace", "2"});
  ASSERT_TRUE(cluster_.WaitRunFinished(run, absl::Seconds(120)));
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  CheckRunOutputs(tmp_ / "suite", tmp_ / "out/m", "m", o.style);
  const json after = json::parse(sim_->StatsJson())["per_question"];
  for (uint32_t q : journaled) {
    const std::string key = sim::QuestionKey(testing::SyntheticQuestion(static_cast<int>(q)));
    EXPECT_EQ(after[key]["requests"].get<int>(), 1) << "question " << q << " asked again";
  }
  int asked_again = 0;
  for (int i = 0; i < n; ++i) {
    const std::string key = sim::QuestionKey(testing::SyntheticQuestion(i));
    if (before.contains(key) && after[key]["requests"].get<int>() > 1) ++asked_again;
  }
  // Questions in flight at the crash are kept by their workers and their
  // answers sent again: at most a few are asked twice.
  EXPECT_LE(asked_again, 8);
  json m = json::parse(testing::ReadText(tmp_ / "out/m/manifest.json"));
  EXPECT_EQ(m["counts"]["answered"], n);
}

TEST_F(DistributedTest, TwoModelsAtOnceFinishWithSeparateOutputs) {
  sim::SimOptions o;
  o.latency_ms = 5;
  Serve(o);
  cluster_.StartCoordinator();
  cluster_.StartWorker("a1", WorkerArgs("model-a"));
  cluster_.StartWorker("b1", WorkerArgs("model-b"));
  cluster_.StartWorker("b2", WorkerArgs("model-b"));
  std::string out, err;
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "model-a", "--model",
                    "model-b", "--wait", "--out", tmp_ / "out", "--progress", "plain"},
                   &out, &err),
      0)
      << err;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "out/model-a", "model-a", o.style);
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "out/model-b", "model-b", o.style);
  for (const auto& r : testing::ReadJsonl(tmp_ / "out/model-a/records.jsonl")) {
    EXPECT_EQ(r["worker"], "a1");
  }
  for (const auto& r : testing::ReadJsonl(tmp_ / "out/model-b/records.jsonl")) {
    EXPECT_TRUE(r["worker"] == "b1" || r["worker"] == "b2") << r["worker"];
  }
}

TEST_F(DistributedTest, ResubmittingResumesUnlessFresh) {
  Serve(sim::SimOptions());
  cluster_.StartCoordinator();
  cluster_.StartWorker("w", WorkerArgs("m"));
  std::string first, second, third, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m"}, &first, &err),
            0);
  ASSERT_TRUE(cluster_.WaitRunFinished(std::string(absl::StripAsciiWhitespace(first))));
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m"}, &second, &err), 0);
  EXPECT_EQ(first, second);
  EXPECT_TRUE(absl::StrContains(err, "resuming identical run")) << err;
  EXPECT_EQ(json::parse(sim_->StatsJson())["requests"], 43);  // the resumed run asked nothing
  ASSERT_EQ(cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--fresh"},
                         &third, &err),
            0);
  EXPECT_NE(first, third);
  ASSERT_TRUE(cluster_.WaitRunFinished(std::string(absl::StripAsciiWhitespace(third))));
}

// A submit Job starts beside the coordinator's pod and often before it serves:
// --wait-for-coordinator retries until it answers instead of failing at once.
TEST_F(DistributedTest, SubmitWaitsForACoordinatorThatStartsLater) {
  const int port = testing::FreePort();
  const std::string target = absl::StrCat("127.0.0.1:", port);
  testing::Subprocess submit;
  submit.Start({testing::MedevalBinary(), "submit", "--data", testing::SamplesDir(), "--model", "m",
                "--coordinator", target, "--wait-for-coordinator", "2m"},
               tmp_.path());
  ASSERT_TRUE(testing::WaitFor([&] { return absl::StrContains(submit.err(), "waiting"); }))
      << submit.err();
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(submit.running()) << submit.err();
  cluster_.set_port(port);
  cluster_.StartCoordinator();
  ASSERT_EQ(submit.Wait(absl::Seconds(60)), 0) << submit.err();
  const std::string run_id(absl::StripAsciiWhitespace(submit.out()));
  ASSERT_FALSE(run_id.empty());
  auto st = cluster_.client().Status(run_id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->runs_size(), 1);
}

TEST_F(DistributedTest, SubmitGivesUpWaitingAfterTheDurationAndFailsAtOnceWithout) {
  const std::string target = absl::StrCat("127.0.0.1:", testing::FreePort());
  std::string out, err;
  absl::Time start = absl::Now();
  EXPECT_EQ(testing::RunMedeval({"submit", "--data", testing::SamplesDir(), "--model", "m",
                                 "--coordinator", target, "--wait-for-coordinator", "3s"},
                                tmp_.path(), &out, &err),
            1);
  EXPECT_GE(absl::Now() - start, absl::Seconds(2)) << err;
  EXPECT_TRUE(absl::StrContains(err, "did not answer within 3s")) << err;
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_EQ(testing::RunMedeval({"submit", "--data", testing::SamplesDir(), "--model", "m",
                                 "--coordinator", target},
                                tmp_.path(), &out, &err),
            1);
  EXPECT_TRUE(absl::StrContains(err, "cannot reach the coordinator")) << err;
  EXPECT_EQ(testing::RunMedeval({"submit", "--data", testing::SamplesDir(), "--model", "m",
                                 "--coordinator", target, "--wait-for-coordinator", "soon"},
                                tmp_.path(), &out, &err),
            2);
  EXPECT_TRUE(absl::StrContains(err, "not a duration")) << err;
}

// Input that is wrong stays wrong however long the coordinator takes to start:
// a bad models file or --model is reported at once, not after the wait.
TEST_F(DistributedTest, SubmitChecksItsModelsBeforeWaitingForTheCoordinator) {
  const std::string target = absl::StrCat("127.0.0.1:", testing::FreePort());
  const std::string config = tmp_ / "models.yaml";
  ASSERT_TRUE(WriteFileAtomic(config,
                              "models:\n  - name: m\n    base_url: http://127.0.0.1:1/v1\n"
                              "    concurrency: zero\n")
                  .ok());
  std::string out, err;
  EXPECT_EQ(testing::RunMedeval({"submit", "--data", testing::SamplesDir(), "--config", config,
                                 "--coordinator", target, "--wait-for-coordinator", "30s"},
                                tmp_.path(), &out, &err),
            2);
  EXPECT_TRUE(absl::StrContains(err, "concurrency")) << err;
  EXPECT_FALSE(absl::StrContains(err, "waiting for the coordinator")) << err;

  ASSERT_TRUE(
      WriteFileAtomic(config, "models:\n  - name: m\n    base_url: http://127.0.0.1:1/v1\n").ok());
  EXPECT_EQ(
      testing::RunMedeval({"submit", "--data", testing::SamplesDir(), "--config", config, "--model",
                           "other", "--coordinator", target, "--wait-for-coordinator", "30s"},
                          tmp_.path(), &out, &err),
      2);
  EXPECT_TRUE(absl::StrContains(err, "--model other is not in")) << err;
  EXPECT_FALSE(absl::StrContains(err, "waiting for the coordinator")) << err;
}

// Today the requests of a backup copy that lost the race were never counted:
// records and manifest said fewer requests than the server saw.
TEST_F(DistributedTest, RecordsCountEveryRequestTheServerSawBackupCopiesIncluded) {
  sim::SimOptions o;
  o.latency_ms = 5;
  o.hang_rate = 0.15;  // a hung request waits for its timeout: a straggler
  o.style.seed = 7;
  Serve(o);
  const int n = 40;
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
  cluster_.StartCoordinator({"--backup-after", "0.3"});
  cluster_.StartWorker("w1", WorkerArgs("m", 4));
  cluster_.StartWorker("w2", WorkerArgs("m", 4));
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m", "--timeout", "3"},
                         &out, &err),
            0)
      << err;
  const std::string run(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "f"}, &out, &err), 0) << err;
  const json stats = json::parse(sim_->StatsJson());
  auto records = testing::ReadJsonl(tmp_ / "f/m/records.jsonl");
  ASSERT_EQ(records.size(), static_cast<size_t>(n));
  int seen_total = 0, recorded_total = 0, asked_twice = 0;
  for (int i = 0; i < n; ++i) {
    const json& per = stats["per_question"][sim::QuestionKey(testing::SyntheticQuestion(i))];
    const int seen = per["requests"].get<int>();
    EXPECT_EQ(records[i]["attempts"].get<int>(), seen) << "question " << i;
    seen_total += seen;
    recorded_total += records[i]["attempts"].get<int>();
    asked_twice += seen > 1 ? 1 : 0;
  }
  EXPECT_GT(asked_twice, 0) << "no question was asked twice: nothing was tested";
  json m = json::parse(testing::ReadText(tmp_ / "f/m/manifest.json"));
  EXPECT_EQ(m["counts"]["attempts"].get<int>(), seen_total);
  EXPECT_EQ(recorded_total, seen_total);
}

}  // namespace
}  // namespace medeval
