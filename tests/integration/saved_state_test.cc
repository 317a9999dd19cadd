// The saved state of `medeval run` under damage: a full disk, a flipped byte
// in the journal, a damaged stored input, a lost journal, untrusted files
// given to commands, and output paths that are not regular files. Real runs
// against the simulator; the child-process tests kill and rerun the real
// binary, the disk-full test injects the fault through the file seam.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "local/run_job.h"
#include "common/file_util.h"
#include "common/url.h"
#include "coordinator/journal.h"
#include "gtest/gtest.h"
#include "proto/medeval.pb.h"
#include "sim/sim_server.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/faulty_file_ops.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

int Requests(const sim::SimServer& sim) { return json::parse(sim.StatsJson())["requests"]; }

std::vector<std::string> RunArgs(const testing::TempDir& tmp, const sim::SimServer& sim) {
  return {testing::MedevalBinary(),
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
}

std::string OnlyRunDir(const testing::TempDir& tmp) {
  auto runs = ListDir(tmp / "results/.medeval/runs");
  EXPECT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);
  return runs->empty() ? "" : JoinPath(tmp / "results/.medeval/runs", (*runs)[0]);
}

// Questions with a record in the run's journal.
std::set<uint32_t> Journaled(const std::string& run_dir) {
  std::set<uint32_t> out;
  JournalReplay replay;
  auto journal = JournalFile::Open(
      JoinPath(run_dir, "journal"), run_dir.substr(run_dir.rfind('/') + 1),
      [&](uint64_t, absl::string_view payload) {
        v1::JournalEntry e;
        if (e.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          out.insert(e.index());
        }
      },
      &replay);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return out;
}

// Today a full disk put each answer straight back in the queue: the run
// asked the model over and over and never stopped.
TEST(SavedStateTest, AFullDiskStopsTheRunAndTheSameCommandContinuesIt) {
  testing::TempDir tmp;
  const int n = 600;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", n);
  sim::SimOptions so;
  so.latency_ms = 20;
  so.capacity = 4;  // about 200 answers/s: the disk fills early in the run
  sim::SimServer sim(so);
  ASSERT_TRUE(sim.Start().ok());
  RunJobOptions o;
  o.suite.data_dir = tmp / "suite";
  o.out_dir = tmp / "results";
  o.probe = false;
  ModelRun m;
  m.model = "m";
  m.backend.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"));
  m.params = DefaultRequestParams();
  m.workers = 2;
  m.concurrency = 4;
  o.models.push_back(m);
  std::atomic<bool> interrupted{false};
  {
    testing::FaultyFileOps faults(tmp.path());
    testing::ScopedFileOps installed(&faults);
    faults.FailWritesAfter("/journal", 20000, ENOSPC);  // room for about 100 answers
    std::ostringstream out, err;
    const absl::Time start = absl::Now();
    EXPECT_EQ(RunEmbeddedJob(o, interrupted, out, err), kJobFailed) << err.str();
    EXPECT_LT(absl::Now() - start, absl::Seconds(60));
    EXPECT_TRUE(absl::StrContains(err.str(), "no space left on " + (tmp / "results/.medeval")))
        << err.str();
    EXPECT_TRUE(absl::StrContains(err.str(),
                                  "answers saved; free space and run the same command "
                                  "again"))
        << err.str();
  }
  const int asked = Requests(sim);
  EXPECT_LT(asked, n / 2);  // stopped, not asking again and again
  const std::set<uint32_t> saved = Journaled(OnlyRunDir(tmp));
  EXPECT_GT(saved.size(), 10u);
  EXPECT_LT(saved.size(), static_cast<size_t>(n));

  // Space is back: the same command asks only what was not saved.
  const json before = json::parse(sim.StatsJson())["per_question"];
  std::ostringstream out, err;
  ASSERT_EQ(RunEmbeddedJob(o, interrupted, out, err), kJobOk) << err.str();
  const json after = json::parse(sim.StatsJson())["per_question"];
  for (uint32_t q : saved) {
    const std::string key = sim::QuestionKey(testing::SyntheticQuestion(static_cast<int>(q)));
    EXPECT_EQ(after[key]["requests"], before[key]["requests"]) << "question " << q;
  }
  CheckRunOutputs(tmp / "suite", tmp / "results/m", "m", so.style);
}

// Today a flipped byte cut the journal there: every later answer was asked
// (and paid for) again.
TEST(SavedStateTest, AFlippedByteInTheJournalAsksOnlyItsAnswerAgain) {
  testing::TempDir tmp;
  const int n = 600;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", n);
  sim::SimOptions so;
  so.latency_ms = 20;
  so.capacity = 4;
  so.down_after = 200;  // the run cannot end before the kill
  so.down_for = absl::Hours(1);
  sim::SimServer sim(so);
  ASSERT_TRUE(sim.Start().ok());
  const auto args = RunArgs(tmp, sim);
  {
    testing::Subprocess p;
    p.Start(args, tmp.path());
    ASSERT_TRUE(testing::KillDuringOutage(sim, p));
  }
  const std::string run_dir = OnlyRunDir(tmp);
  const std::set<uint32_t> journaled = Journaled(run_dir);
  ASSERT_GE(journaled.size(), 150u);
  const std::string path = JoinPath(run_dir, "journal");
  std::string data = testing::ReadText(path);
  data[data.size() / 3] ^= 0x10;
  testing::WriteText(path, data);

  const json before = json::parse(sim.StatsJson())["per_question"];
  testing::Subprocess again;
  again.Start(args, tmp.path());
  ASSERT_EQ(again.Wait(), 0) << again.err();
  EXPECT_TRUE(absl::StrContains(again.err(), path)) << again.err();
  EXPECT_TRUE(absl::StrContains(again.err(), "damaged bytes at offset")) << again.err();
  const json after = json::parse(sim.StatsJson())["per_question"];
  int reasked = 0;
  for (uint32_t q : journaled) {
    const std::string key = sim::QuestionKey(testing::SyntheticQuestion(static_cast<int>(q)));
    if (after[key]["requests"] != before[key]["requests"]) ++reasked;
  }
  EXPECT_EQ(reasked, 1);  // the one damaged record
  CheckRunOutputs(tmp / "suite", tmp / "results/m", "m", so.style);
}

// Today a damaged stored copy made `run` start a new run and pay for every
// answer again.
TEST(SavedStateTest, ADamagedStoredInputIsRestoredFromTheSameInput) {
  testing::TempDir tmp;
  const int n = 60;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", n);
  sim::SimOptions so;
  sim::SimServer sim(so);
  ASSERT_TRUE(sim.Start().ok());
  const auto args = RunArgs(tmp, sim);
  std::string out, err;
  ASSERT_EQ(testing::RunMedeval({args.begin() + 1, args.end()}, tmp.path(), &out, &err), 0) << err;
  const int asked = Requests(sim);
  const std::string stored = JoinPath(OnlyRunDir(tmp), "input/MedHC.jsonl");
  std::string copy = testing::ReadText(stored);
  copy[copy.size() / 2] ^= 0x01;
  testing::WriteText(stored, copy);
  ASSERT_EQ(testing::RunMedeval({args.begin() + 1, args.end()}, tmp.path(), &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, "60/60 answered")) << out;
  EXPECT_TRUE(absl::StrContains(err, "restored")) << err;
  EXPECT_EQ(Requests(sim), asked);  // nothing asked again
  EXPECT_EQ(testing::ReadText(stored), testing::ReadText(tmp / "suite/MedHC.jsonl"));
  EXPECT_EQ(ListDir(tmp / "results/.medeval/runs")->size(), 1u);
}

// Today a lost journal was silently replaced by an empty one.
TEST(SavedStateTest, ALostJournalStopsWithExitTwoAndAsksNothing) {
  testing::TempDir tmp;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", 40);
  sim::SimServer sim(sim::SimOptions{});
  ASSERT_TRUE(sim.Start().ok());
  const auto args = RunArgs(tmp, sim);
  std::string out, err;
  ASSERT_EQ(testing::RunMedeval({args.begin() + 1, args.end()}, tmp.path(), &out, &err), 0) << err;
  const int asked = Requests(sim);
  ASSERT_EQ(::unlink(JoinPath(OnlyRunDir(tmp), "journal").c_str()), 0);
  EXPECT_EQ(testing::RunMedeval({args.begin() + 1, args.end()}, tmp.path(), &out, &err), 2) << err;
  EXPECT_TRUE(absl::StrContains(err, "journal is missing")) << err;
  EXPECT_TRUE(absl::StrContains(err, "Nothing was asked")) << err;
  EXPECT_EQ(Requests(sim), asked);
  EXPECT_EQ(ListDir(tmp / "results/.medeval/runs")->size(), 1u);
}

// Untrusted files used to abort the process (exit 134).
TEST(SavedStateTest, CommandsGiveClearErrorsOnMalformedFiles) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "run/manifest.json", R"({"outputs": [{"path": 7, "sha256": "x"}]})");
  std::string out, err;
  int code = testing::RunMedeval({"verify", tmp / "run"}, tmp.path(), &out, &err);
  EXPECT_NE(code, 134);
  EXPECT_NE(code, 0);
  EXPECT_TRUE(absl::StrContains(err, "must be strings")) << err;

  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", 3);
  testing::WriteText(tmp / "models.yaml", "? [a, b]\n: 1\nmodels:\n  - name: m\n");
  code = testing::RunMedeval(
      {"run", "--data", tmp / "suite", "--config", tmp / "models.yaml", "--out", tmp / "r"},
      tmp.path(), &out, &err);
  EXPECT_EQ(code, 2) << err;
  EXPECT_TRUE(absl::StrContains(err, "models.yaml:1: a key in the file must be a plain name"))
      << err;
}

// Writing the port by rename used to replace whatever the path named (as
// root, /dev/null became a regular file).
TEST(SavedStateTest, APortFileThatIsAFifoIsWrittenThrough) {
  testing::TempDir tmp;
  const std::string fifo = tmp / "port.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rd, 0);
  testing::Subprocess sim;
  sim.Start({testing::MedevalBinary(), "sim", "--listen", "127.0.0.1:0", "--port-file", fifo},
            tmp.path());
  std::string got;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        char buf[64];
        ssize_t r = ::read(rd, buf, sizeof(buf));
        if (r > 0) got.append(buf, static_cast<size_t>(r));
        return absl::StrContains(got, "\n") || !sim.running();
      },
      absl::Seconds(30)));
  ::close(rd);
  sim.Kill(SIGTERM);
  sim.Wait();
  EXPECT_GT(std::atoi(got.c_str()), 0) << got;
  struct stat st;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

}  // namespace
}  // namespace medeval
