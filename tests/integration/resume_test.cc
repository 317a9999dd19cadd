// kill -9 of `medeval run` mid-run, then the same command again: it finishes,
// and no question whose answer was journaled is asked a second time.
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "coordinator/journal.h"
#include "gtest/gtest.h"
#include "proto/medeval.pb.h"
#include "sim/sim_server.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

TEST(ResumeTest, KilledRunContinuesWithoutAskingAnsweredQuestionsAgain) {
  testing::TempDir tmp;
  const int n = 600;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", n);
  sim::SimOptions o;
  o.latency_ms = 20;
  o.capacity = 4;
  // After 150 answers the server stops answering until the test brings it
  // back: the run cannot end before the kill, however slow the machine.
  o.down_after = 150;
  o.down_for = absl::Hours(1);
  sim::SimServer sim(o);
  ASSERT_TRUE(sim.Start().ok());
  const std::vector<std::string> args = {testing::MedevalBinary(),
                                         "run",
                                         "--data",
                                         tmp / "suite",
                                         "--model",
                                         "m",
                                         "--base-url",
                                         absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
                                         "--out",
                                         tmp / "results",
                                         "--workers",
                                         "2",
                                         "--concurrency",
                                         "4"};
  {
    testing::Subprocess p;
    p.Start(args, tmp.path());
    ASSERT_TRUE(testing::KillDuringOutage(sim, p));
  }
  const json before = json::parse(sim.StatsJson())["per_question"];
  auto runs = ListDir(tmp / "results/.medeval/runs");
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  std::set<uint32_t> journaled;
  JournalReplay replay;
  auto journal = JournalFile::Open(
      JoinPath(JoinPath(tmp / "results/.medeval/runs", (*runs)[0]), "journal"), (*runs)[0],
      [&](uint64_t, absl::string_view payload) {
        v1::JournalEntry e;
        ASSERT_TRUE(e.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
        journaled.insert(e.index());
      },
      &replay);
  ASSERT_TRUE(journal.ok()) << journal.status();
  journal->reset();
  ASSERT_GE(journaled.size(), 100u);
  ASSERT_LT(journaled.size(), static_cast<size_t>(n));

  testing::Subprocess again;
  again.Start(args, tmp.path());
  ASSERT_EQ(again.Wait(), 0) << again.err();
  const json after = json::parse(sim.StatsJson())["per_question"];
  int reasked = 0;
  for (int i = 0; i < n; ++i) {
    const std::string key = sim::QuestionKey(testing::SyntheticQuestion(i));
    ASSERT_TRUE(after.contains(key)) << "question " << i << " never asked";
    const int b = before.contains(key) ? before[key]["requests"].get<int>() : 0;
    const int a = after[key]["requests"].get<int>();
    if (journaled.count(i)) {
      EXPECT_EQ(a, 1) << "question " << i << " was answered before the kill and asked again";
    } else if (b > 0) {
      ++reasked;  // in flight when killed: asked again, as it must be
    }
  }
  EXPECT_LE(reasked, 2 * 4 * 2);  // at most what two workers had in flight and queued
  CheckRunOutputs(tmp / "suite", tmp / "results/m", "m", o.style);
}

}  // namespace
}  // namespace medeval
