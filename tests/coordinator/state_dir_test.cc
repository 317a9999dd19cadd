#include "coordinator/state_dir.h"

#include <unistd.h>
#include <zlib.h>

#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/zip_archive.h"
#include "coordinator/run_output.h"
#include "gtest/gtest.h"
#include "tests/testing/faulty_file_ops.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

uint32_t Crc32ForTest(const std::string& s) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

// Input with a blank line and an invalid line (left out with skip_invalid).
constexpr char kInput[] =
    R"({"question": "q1", "answer": "", "other": {"id": 1, "source": "S"}})"
    "\n\n"
    R"({"question": "q2", "answer": "", "other": {"id": 2, "source": "S"}, "extra": [1, 2]})"
    "\n{\"question\": 7, \"other\": {}}\n"
    R"({"question": "q3", "answer": "", "other": {"id": 3, "source": "S"}})"
    "\n";

v1::RunSpec Spec(bool skip_invalid) {
  v1::RunSpec spec;
  spec.set_run_id("run-1");
  spec.set_model("org/model");
  spec.set_track("v4-llm");
  spec.set_skip_invalid(skip_invalid);
  spec.mutable_params()->set_temperature(0);
  return spec;
}

absl::StatusOr<v1::RunSpec> Create(StateDir& dir, const v1::RunSpec& spec) {
  return dir.CreateRun("run-1", {{"MedExam.jsonl", kInput}},
                       [&](const std::string& input) -> absl::StatusOr<v1::RunSpec> {
                         auto suite = LoadRunSuite(input, spec);
                         if (!suite.ok()) return suite.status();
                         v1::RunSpec s = spec;
                         auto* d = s.add_datasets();
                         d->set_name("MedExam");
                         d->set_input_path("MedExam.jsonl");
                         d->set_input_sha256(suite->datasets[0].sha256);
                         return s;
                       });
}

void Journal(JournalWriter& w, std::shared_ptr<JournalFile> f, const v1::JournalEntry& e) {
  std::promise<void> p;
  w.Append(f, e.SerializeAsString(), [&p](absl::StatusOr<uint64_t> off) {
    ASSERT_TRUE(off.ok());
    p.set_value();
  });
  p.get_future().wait();
}

TEST(StateDirTest, OneCoordinatorPerDirectory) {
  testing::TempDir tmp;
  auto a = StateDir::Open(tmp / "state");
  ASSERT_TRUE(a.ok());
  auto b = StateDir::Open(tmp / "state");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(b.status().message(), "in use")) << b.status();
}

TEST(StateDirTest, RefusesInvalidInputUnlessSkipping) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto refused = Create(**dir, Spec(false));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "MedExam.jsonl:4: \"question\" must be a string"))
      << refused.status();
  EXPECT_TRUE((*dir)->ListRuns()->empty());  // nothing left behind
  EXPECT_TRUE(Create(**dir, Spec(true)).ok());
  EXPECT_EQ(*(*dir)->ListRuns(), std::vector<std::string>{"run-1"});
}

TEST(StateDirTest, RecoversStateFromTheJournal) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = Create(**dir, Spec(true));
  ASSERT_TRUE(spec.ok()) << spec.status();
  {
    auto run = LoadRun(**dir, *spec);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->state.size(), 3u);
    JournalWriter w;
    v1::JournalEntry e;
    e.set_index(0);
    e.mutable_answer()->set_answer("<A>");
    e.mutable_answer()->set_attempts(3);
    Journal(w, run->journal, e);
    v1::JournalEntry f;
    f.set_index(2);
    f.mutable_failure()->set_last_error("HTTP 400: no");
    Journal(w, run->journal, f);
    // Requests of copies whose results were not kept.
    v1::JournalEntry m;
    m.set_index(0);
    m.set_more_attempts(2);
    Journal(w, run->journal, m);
    m.set_more_attempts(1);
    Journal(w, run->journal, m);
  }
  auto run = LoadRun(**dir, *spec);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kFailed}));
  EXPECT_EQ(run->more_attempts, (absl::flat_hash_map<uint32_t, uint32_t>{{0, 3}}));
  EXPECT_EQ(run->retries, 2u);
  EXPECT_EQ(run->failure_errors.at(2), "HTTP 400: no");
  {
    JournalWriter w;
    v1::JournalEntry r;
    r.set_reopen(true);
    Journal(w, run->journal, r);
  }
  run = LoadRun(**dir, *spec);
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kPending}));
  EXPECT_TRUE(run->failure_errors.empty());
}

v1::JournalEntry Answer(uint32_t q, const std::string& text) {
  v1::JournalEntry e;
  e.set_index(q);
  e.mutable_answer()->set_answer(text);
  e.mutable_answer()->set_attempts(1);
  return e;
}

// A run with questions 0 and 2 answered.
absl::StatusOr<v1::RunSpec> RunWithTwoAnswers(StateDir& dir) {
  auto spec = Create(dir, Spec(true));
  if (!spec.ok()) return spec;
  auto run = LoadRun(dir, *spec);
  if (!run.ok()) return run.status();
  JournalWriter w;
  Journal(w, run->journal, Answer(0, "A"));
  Journal(w, run->journal, Answer(2, "C"));
  return spec;
}

TEST(StateDirTest, TheJournalExistsBeforeTheRunIsPublished) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  ASSERT_TRUE(dir.ok());
  testing::FaultyFileOps faults(tmp.path());
  {
    testing::ScopedFileOps installed(&faults);
    ASSERT_TRUE(RunWithTwoAnswers(**dir).ok());
    // A power cut: whatever no directory fsync made durable is gone.
    faults.LoseUnsyncedEntries();
  }
  auto spec = (*dir)->ReadSpec("run-1");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->journal_format(), kJournalFormat);
  auto run = LoadRun(**dir, *spec);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kAnswered}));
}

// A crash between writing the run folder and renaming it into place leaves
// no run, and nothing that keeps the next submission from working.
TEST(StateDirTest, ACrashBeforeTheRunFolderIsRenamedLeavesNoRun) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  ASSERT_TRUE(dir.ok());
  testing::FaultyFileOps faults(tmp.path());
  {
    testing::ScopedFileOps installed(&faults);
    faults.CrashAtRename("runs/run-1");
    EXPECT_FALSE(Create(**dir, Spec(true)).ok());
    EXPECT_TRUE(faults.crashed());
    faults.Heal();
    faults.LoseUnsyncedEntries();
  }
  EXPECT_TRUE((*dir)->ListRuns()->empty());
  EXPECT_FALSE(PathExists(tmp / "state/runs/.tmp-run-1"));  // cleaned up on listing
  ASSERT_TRUE(RunWithTwoAnswers(**dir).ok());
  EXPECT_EQ(*(*dir)->ListRuns(), std::vector<std::string>{"run-1"});
}

// Today a missing or emptied journal was silently replaced by an empty one
// and every answer asked (and paid for) again.
TEST(StateDirTest, AMissingOrEmptiedJournalIsReported) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = RunWithTwoAnswers(**dir);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string journal = (*dir)->JournalPath("run-1");
  const std::string saved = testing::ReadText(journal);
  testing::WriteText(journal, "");
  auto run = LoadRun(**dir, *spec);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(run.status().message(), "is empty")) << run.status();
  EXPECT_TRUE(absl::StrContains(run.status().message(), (*dir)->RunDir("run-1"))) << run.status();
  ASSERT_EQ(::unlink(journal.c_str()), 0);
  run = LoadRun(**dir, *spec);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(run.status().message(), "is missing")) << run.status();
  EXPECT_FALSE(PathExists(journal));  // not recreated behind the user's back
  testing::WriteText(journal, saved);
  EXPECT_TRUE(LoadRun(**dir, *spec).ok());
}

TEST(StateDirTest, AJournalCopiedFromAnotherRunIsRefused) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = RunWithTwoAnswers(**dir);
  ASSERT_TRUE(spec.ok());
  auto other = (*dir)->CreateRun("run-2", {{"MedExam.jsonl", kInput}},
                                 [&](const std::string&) -> absl::StatusOr<v1::RunSpec> {
                                   v1::RunSpec s = *spec;
                                   s.set_run_id("run-2");
                                   return s;
                                 });
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(
      WriteFileAtomic((*dir)->JournalPath("run-2"), testing::ReadText((*dir)->JournalPath("run-1")))
          .ok());
  auto run = LoadRun(**dir, *other);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(run.status().message(), "belongs to run run-1")) << run.status();
}

TEST(StateDirTest, ADamagedRecordInTheMiddleIsAskedAgainAlone) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = Create(**dir, Spec(true));
  ASSERT_TRUE(spec.ok());
  {
    auto run = LoadRun(**dir, *spec);
    ASSERT_TRUE(run.ok());
    JournalWriter w;
    for (uint32_t q = 0; q < 3; ++q)
      Journal(w, run->journal, Answer(q, "ANSWER-" + std::to_string(q)));
  }
  const std::string path = (*dir)->JournalPath("run-1");
  std::string data = testing::ReadText(path);
  size_t at = data.find("ANSWER-1");
  ASSERT_NE(at, std::string::npos);
  data[at] = 'X';
  testing::WriteText(path, data);
  auto run = LoadRun(**dir, *spec);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kAnswered}));
}

// Result folders of earlier versions: unframed journal, spec without a format.
TEST(StateDirTest, ARunOfTheEarlierFormatResumes) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = Create(**dir, Spec(true));
  ASSERT_TRUE(spec.ok());
  v1::RunSpec old = *spec;
  old.clear_journal_format();
  ASSERT_TRUE(
      WriteFileAtomic(JoinPath((*dir)->RunDir("run-1"), "spec.pb"), old.SerializeAsString()).ok());
  std::string journal;
  for (uint32_t q : {0u, 2u}) {
    std::string p = Answer(q, "old").SerializeAsString();
    for (uint32_t v : {static_cast<uint32_t>(p.size()), Crc32ForTest(p)}) {
      for (int i = 0; i < 4; ++i) journal.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    journal += p;
  }
  testing::WriteText((*dir)->JournalPath("run-1"), journal);
  auto run = LoadRun(**dir, old);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kAnswered}));
  // An earlier-version run that never journaled anything starts afresh.
  ASSERT_EQ(::unlink((*dir)->JournalPath("run-1").c_str()), 0);
  run = LoadRun(**dir, old);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kPending, kPending, kPending}));
}

TEST(StateDirTest, ADamagedInputCopyIsRestoredOnlyFromTheSameInput) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp / "state");
  auto spec = RunWithTwoAnswers(**dir);
  ASSERT_TRUE(spec.ok());
  const std::string stored = JoinPath((*dir)->InputDir("run-1"), "MedExam.jsonl");
  testing::WriteText(stored, std::string(kInput).substr(0, 20));
  EXPECT_FALSE(LoadRun(**dir, *spec).ok());
  std::vector<std::string> restored;
  absl::Status st = RestoreInputs(**dir, *spec, {{"MedExam.jsonl", "something else\n"}}, &restored);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(st.message(), "MedExam.jsonl")) << st;
  EXPECT_TRUE(restored.empty());
  st = RestoreInputs(**dir, *spec, {{"MedExam.jsonl", kInput}}, &restored);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(restored, std::vector<std::string>{"MedExam.jsonl"});
  auto run = LoadRun(**dir, *spec);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, (std::vector<uint8_t>{kAnswered, kPending, kAnswered}));
}

class RunOutputTest : public ::testing::Test {
 protected:
  // Answers q1, fails q3 (unless `all`), and writes the outputs.
  void WriteOutputs(bool all, bool allow_incomplete) {
    dir_ = *StateDir::Open(tmp_ / "state");
    v1::RunSpec s = Spec(true);
    s.set_allow_incomplete_zip(allow_incomplete);
    auto spec = Create(*dir_, s);
    ASSERT_TRUE(spec.ok());
    auto run = LoadRun(*dir_, *spec);
    ASSERT_TRUE(run.ok());
    JournalWriter w;
    std::vector<std::pair<uint32_t, bool>> results = {{0, true}, {1, true}, {2, all}};
    for (auto [q, ok] : results) {
      v1::JournalEntry e;
      e.set_index(q);
      v1::AnswerRecord* r = ok ? e.mutable_answer() : e.mutable_failure();
      r->set_answer(absl::StrCat("answer ", q + 1));
      r->set_raw_text(absl::StrCat("<think>hm</think>answer ", q + 1));
      r->set_reasoning("hm");
      r->set_attempts(1);
      r->set_worker("w1");
      r->set_endpoint("http://h/v1");
      if (!ok) r->set_last_error("HTTP 400: too long");
      Journal(w, run->journal, e);
    }
    // A cancelled backup copy of question 2 had sent 2 requests.
    v1::JournalEntry more;
    more.set_index(1);
    more.set_more_attempts(2);
    Journal(w, run->journal, more);
    run = LoadRun(*dir_, *spec);
    RunSnapshot snap;
    snap.spec = run->spec;
    snap.suite = run->suite;
    snap.journal = run->journal;
    snap.output_dir = run->output_dir;
    snap.state = run->state;
    snap.offset = run->offset;
    snap.more_attempts = run->more_attempts;
    snap.finished = absl::Now();
    ASSERT_TRUE(WriteRunOutputs(snap, dir_->InputDir("run-1")).ok());
    out_ = run->output_dir;
  }
  testing::TempDir tmp_;
  std::unique_ptr<StateDir> dir_;
  std::string out_;
};

TEST_F(RunOutputTest, KeepsEveryInputLineInOrderWithTheAnswerFilledIn) {
  WriteOutputs(/*all=*/true, false);
  std::vector<absl::string_view> in = SplitLines(kInput);
  std::string text = testing::ReadText(JoinPath(out_, "MedBench_LLM/MedExam.jsonl"));
  std::vector<absl::string_view> lines = SplitLines(text);
  ASSERT_EQ(lines.size(), in.size() - 1);  // a blank line is not a question: left out
  EXPECT_EQ(lines[2], in[3]);              // skipped line (a JSON object) copied as it was
  json l2 = json::parse(lines[1]);
  json i2 = json::parse(in[2]);
  EXPECT_EQ(l2["answer"], "answer 2");
  l2.erase("answer");
  i2.erase("answer");
  EXPECT_EQ(l2, i2);  // every other field as it was
  EXPECT_EQ(json::parse(lines[3])["answer"], "answer 3");
  // Key order kept: question, answer, other, extra.
  EXPECT_TRUE(absl::StartsWith(lines[1], R"({"question":"q2","answer":"answer 2","other":)"))
      << lines[1];

  auto zip = ReadZip(JoinPath(out_, "MedBench_LLM.zip"));
  ASSERT_TRUE(zip.ok());
  ASSERT_EQ(zip->size(), 2u);
  EXPECT_EQ((*zip)[0].name, "MedBench_LLM/");
  EXPECT_EQ((*zip)[1].name, "MedBench_LLM/MedExam.jsonl");
  EXPECT_EQ((*zip)[1].data, text);

  auto records = testing::ReadJsonl(JoinPath(out_, "records.jsonl"));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1]["line"], 3);
  EXPECT_EQ(records[1]["other"], json({{"id", 2}, {"source", "S"}}));
  EXPECT_EQ(records[1]["raw_text"], "<think>hm</think>answer 2");
  EXPECT_EQ(records[1]["reasoning"], "hm");
  // Every request sent for the question, the backup copy's included.
  EXPECT_EQ(records[1]["attempts"], 3);
  EXPECT_EQ(records[0]["attempts"], 1);

  json m = json::parse(testing::ReadText(JoinPath(out_, "manifest.json")));
  EXPECT_EQ(m["model"], "org/model");
  EXPECT_EQ(m["complete"], true);
  EXPECT_EQ(m["counts"]["answered"], 3);
  EXPECT_EQ(m["counts"]["attempts"], 5);  // agrees with the records
  EXPECT_EQ(m["counts"]["skipped_invalid"], 1);
  EXPECT_EQ(m["skipped"][0]["line"], 4);
  EXPECT_EQ(m["inputs"][0]["sha256"], Sha256Hex(kInput));
  for (const auto& o : m["outputs"]) {
    EXPECT_EQ(o["sha256"], *Sha256File(JoinPath(out_, o["path"].get<std::string>()))) << o;
  }
}

TEST_F(RunOutputTest, FailedQuestionsAreNeverSilentNulls) {
  WriteOutputs(/*all=*/false, false);
  const std::string text = testing::ReadText(JoinPath(out_, "MedBench_LLM/MedExam.jsonl"));
  std::vector<absl::string_view> lines = SplitLines(text);
  EXPECT_EQ(lines[3], SplitLines(kInput)[4]);  // left as in the input, not a made-up answer
  EXPECT_FALSE(PathExists(JoinPath(out_, "MedBench_LLM.zip")));
  json m = json::parse(testing::ReadText(JoinPath(out_, "manifest.json")));
  EXPECT_EQ(m["complete"], false);
  EXPECT_EQ(m["counts"]["failed"], 1);
  EXPECT_EQ(m["failed"][0],
            json({{"dataset", "MedExam"}, {"line", 5}, {"error", "HTTP 400: too long"}}));
  auto records = testing::ReadJsonl(JoinPath(out_, "records.jsonl"));
  EXPECT_EQ(records[2]["status"], "failed");
  EXPECT_TRUE(records[2]["answer"].is_null());
  EXPECT_EQ(records[2]["last_error"], "HTTP 400: too long");
}

TEST_F(RunOutputTest, IncompleteZipOnRequest) {
  WriteOutputs(/*all=*/false, /*allow_incomplete=*/true);
  EXPECT_TRUE(PathExists(JoinPath(out_, "MedBench_LLM.zip")));
}

}  // namespace
}  // namespace medeval
