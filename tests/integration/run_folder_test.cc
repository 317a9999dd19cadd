// `medeval run` into a folder that holds other runs: a run asks exactly the
// questions of its own suite, says which run it is, never replaces another
// run's result without --replace, and finds output problems before the first
// question. Real medeval processes against a real simulated model server.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string QuestionText(const std::string& dataset, int i) {
  return absl::StrCat(dataset, " 问题 ", i, "：请解释。");
}

// A v4 LLM suite: `n` questions in each named dataset.
void WriteSuite(const std::string& dir, const std::vector<std::pair<std::string, int>>& sets) {
  for (const auto& [name, n] : sets) {
    std::string lines;
    for (int i = 0; i < n; ++i) {
      json j = {{"question", QuestionText(name, i)}, {"answer", ""}, {"other", {{"id", i}}}};
      absl::StrAppend(&lines, j.dump(), "\n");
    }
    testing::WriteText(JoinPath(dir, name + ".jsonl"), lines);
  }
}

class RunFolderTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o = sim::SimOptions()) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  int Requests() const { return Stats()["requests"].get<int>(); }
  int Asked(const std::string& dataset, int i) const {
    json pq = Stats()["per_question"];
    const std::string key = sim::QuestionKey(QuestionText(dataset, i));
    return pq.contains(key) ? pq[key]["requests"].get<int>() : 0;
  }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {testing::MedevalBinary(),
                                  "run",
                                  "--data",
                                  tmp_ / "suite",
                                  "--model",
                                  "m",
                                  "--base-url",
                                  Url(),
                                  "--out",
                                  tmp_ / "results"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  int Run(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = Args(std::move(extra));
    a.erase(a.begin());
    return testing::RunMedeval(a, tmp_.path(), &out_, &err_);
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(RunFolderTest, ASubsetRunBesideAnInterruptedRunAsksOnlyItsOwnQuestions) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.capacity = 2;
  o.down_after = 60;  // the full run cannot end before the kill
  o.down_for = absl::Hours(1);
  Serve(o);
  WriteSuite(tmp_ / "suite", {{"MedSafety", 20}, {"MedExam", 400}});
  {
    testing::Subprocess full;
    full.Start(Args({"--workers", "1", "--concurrency", "2"}), tmp_.path());
    ASSERT_TRUE(testing::KillDuringOutage(*sim_, full));
    EXPECT_TRUE(absl::StrContains(full.err(), "new run")) << full.err();
  }
  ASSERT_TRUE(testing::WaitFor([&] { return Stats()["in_flight"].get<int>() == 0; }));
  std::vector<int> exam_before;
  for (int i = 0; i < 400; ++i) exam_before.push_back(Asked("MedExam", i));
  const int before = Requests();

  ASSERT_EQ(Run({"--datasets", "MedSafety"}), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "m: new run")) << err_;
  EXPECT_EQ(Requests() - before, 20) << "the subset run asked other questions";
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(Asked("MedExam", i), exam_before[i]) << "MedExam question " << i << " was asked";
  }
  auto zip = ReadZip(tmp_ / "results/m/MedBench_LLM.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(zip->size(), 2u);  // the folder and MedSafety.jsonl

  // The full run again continues where it stopped, and says so.
  ASSERT_EQ(Run({"--replace"}), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "m: continuing run ")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "/420 answered")) << err_;
}

TEST_F(RunFolderTest, AnotherRunsResultIsNeverReplacedSilently) {
  Serve();
  WriteSuite(tmp_ / "suite", {{"MedSafety", 10}, {"MedExam", 12}});
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "m: new run")) << err_;
  const std::string zip_path = tmp_ / "results/m/MedBench_LLM.zip";
  const std::string zip_bytes = testing::ReadText(zip_path);
  const std::string manifest = testing::ReadText(tmp_ / "results/m/manifest.json");
  const int asked = Requests();
  ASSERT_EQ(asked, 22);

  // A subset, and other settings: both other runs. Refused before anything is asked.
  for (const auto& extra : std::vector<std::vector<std::string>>{{"--datasets", "MedSafety"},
                                                                 {"--temperature", "0.7"}}) {
    EXPECT_EQ(Run(extra), 2) << err_;
    EXPECT_TRUE(absl::StrContains(err_, "holds the result of another run")) << err_;
    EXPECT_TRUE(absl::StrContains(err_, "22/22 answered")) << err_;
    EXPECT_TRUE(absl::StrContains(err_, "--replace")) << err_;
    EXPECT_EQ(Requests(), asked);
    EXPECT_EQ(testing::ReadText(zip_path), zip_bytes);
    EXPECT_EQ(testing::ReadText(tmp_ / "results/m/manifest.json"), manifest);
  }
  // The same run again is no other run.
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "continuing run ")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, ": 22/22 answered")) << err_;
  EXPECT_EQ(Requests(), asked);

  // --replace says what it replaces and does.
  ASSERT_EQ(Run({"--datasets", "MedSafety", "--replace"}), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "replacing the result")) << err_;
  auto zip = ReadZip(zip_path);
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(zip->size(), 2u);
}

TEST_F(RunFolderTest, OutputProblemsAreFoundBeforeTheFirstQuestion) {
  Serve();
  WriteSuite(tmp_ / "suite", {{"MedSafety", 5}});

  testing::WriteText(tmp_ / "results/m", "a file where the model's folder goes\n");
  EXPECT_EQ(Run(), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "is not a folder")) << err_;
  EXPECT_EQ(Requests(), 0);

  const std::string long_name(250, 'x');
  std::vector<std::string> a = Args();
  a.erase(a.begin());
  a[4] = long_name;  // --model
  EXPECT_EQ(testing::RunMedeval(a, tmp_.path(), &out_, &err_), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "too long")) << err_;
  EXPECT_EQ(Requests(), 0);

  if (::geteuid() != 0) {  // root writes anywhere
    ASSERT_TRUE(MakeDirs(tmp_ / "ro/m").ok());
    ASSERT_EQ(::chmod((tmp_ / "ro/m").c_str(), 0555), 0);
    a = Args();
    a.erase(a.begin());
    a[8] = tmp_ / "ro";  // --out
    EXPECT_EQ(testing::RunMedeval(a, tmp_.path(), &out_, &err_), 2) << err_;
    EXPECT_TRUE(absl::StrContains(err_, "cannot write")) << err_;
    EXPECT_EQ(Requests(), 0);
    ::chmod((tmp_ / "ro/m").c_str(), 0755);
  }
}

TEST_F(RunFolderTest, TheFirstRerunAfterAnInterruptedMergeJustFinishes) {
  Serve();
  const int n = 3000;
  WriteSuite(tmp_ / "suite", {{"MedExam", n}});
  ASSERT_EQ(Run({"--concurrency", "64"}), 0) << err_;
  const int asked = Requests();
  // The run stopped after its last answer was journaled and before its
  // outputs were written: no outputs anywhere.
  auto runs = ListDir(tmp_ / "results/.medeval/runs");
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  ASSERT_TRUE(
      RemoveAll(JoinPath(JoinPath(tmp_ / "results/.medeval/runs", (*runs)[0]), "output")).ok());
  ASSERT_TRUE(RemoveAll(tmp_ / "results/m").ok());

  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "retry")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "continuing run")) << err_;
  EXPECT_EQ(Requests(), asked);
  auto zip = ReadZip(tmp_ / "results/m/MedBench_LLM.zip");
  ASSERT_TRUE(zip.ok()) << zip.status();
}

}  // namespace
}  // namespace medeval
