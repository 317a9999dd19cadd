#include "coordinator/scheduler.h"

#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "coordinator/run_images.h"
#include "gtest/gtest.h"
#include "tests/coordinator/scheduler_fixture.h"
#include "tests/testing/faulty_file_ops.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

TEST_F(SchedulerTest, LeasesUpToCreditsAndSendsRunInfoOnce) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 10)).ok());
  RecordingChannel& ch = NewChannel();
  std::string w = Connect(&ch, "w1", "m", 2, 1);
  auto leases = ch.TakeLeases();
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0].key().index(), 0u);
  EXPECT_EQ(leases[0].question(), "q0");
  EXPECT_EQ(leases[0].dataset(), "D");
  EXPECT_EQ(leases[0].line(), 1u);
  EXPECT_EQ(ch.RunInfos(), 1);
  Deliver(w, &ch, Answer(leases[0]));
  auto more = ch.TakeLeases();
  ASSERT_EQ(more.size(), 1u);  // one credit came back
  EXPECT_EQ(more[0].key().index(), 3u);
  EXPECT_EQ(ch.RunInfos(), 1);
}

TEST_F(SchedulerTest, AcksDurableAnswersAndCompletesTheRun) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 3)).ok());
  RecordingChannel& ch = NewChannel();
  std::string w = Connect(&ch, "w1", "m", 8);
  for (const auto& l : ch.TakeLeases()) Deliver(w, &ch, Answer(l));
  EXPECT_EQ(Completed(), std::vector<std::string>{"r1"});
  EXPECT_EQ(ch.Acks(), 3);
  v1::RunStatus st = RunStatus("r1");
  EXPECT_EQ(st.answered(), 3u);
  EXPECT_EQ(st.state(), "finishing");
  s_->FinishMerge("r1", absl::OkStatus());
  EXPECT_EQ(RunStatus("r1").state(), "done");
}

TEST_F(SchedulerTest, FirstAnswerWinsAndDuplicatesAreCounted) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& ch = NewChannel();
  std::string w = Connect(&ch, "w1", "m", 8);
  auto leases = ch.TakeLeases();
  Deliver(w, &ch, Answer(leases[0], "first"));
  Deliver(w, &ch, Answer(leases[0], "second"));
  v1::RunStatus st = RunStatus("r1");
  EXPECT_EQ(st.answered(), 1u);
  EXPECT_EQ(st.duplicates(), 1u);
  auto snap = s_->Snapshot("r1");
  v1::JournalEntry e;
  ASSERT_TRUE(e.ParseFromString(*snap->journal->ReadAt(snap->offset[0])));
  EXPECT_EQ(e.answer().answer(), "first");
}

TEST_F(SchedulerTest, DisconnectReturnsLeasesToTheQueue) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 4)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "wa", "m", 4);
  EXPECT_EQ(a.TakeLeases().size(), 4u);
  std::string wb = Connect(&b, "wb", "m", 4);
  EXPECT_TRUE(b.TakeLeases().empty());
  s_->Disconnect(wa, &a);
  auto leases = b.TakeLeases();
  ASSERT_EQ(leases.size(), 4u);
  for (const auto& l : leases) Deliver(wb, &b, Answer(l));
  EXPECT_EQ(RunStatus("r1").answered(), 4u);
}

TEST_F(SchedulerTest, SilentWorkersExpire) {
  Scheduler::Options o;
  o.heartbeat_timeout = absl::Seconds(10);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "wa", "m", 2);
  ASSERT_EQ(a.TakeLeases().size(), 2u);
  std::string wb = Connect(&b, "wb", "m", 2);
  clock_.Advance(absl::Seconds(8));
  v1::WorkerMessage hb;
  hb.mutable_heartbeat()->set_inflight(0);
  Deliver(wb, &b, hb);
  s_->Tick();
  EXPECT_FALSE(a.closed());
  clock_.Advance(absl::Seconds(3));
  s_->Tick();
  EXPECT_TRUE(a.closed());
  EXPECT_EQ(a.close_status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(b.closed());
  EXPECT_EQ(b.TakeLeases().size(), 2u);
  EXPECT_EQ(s_->counters().expired_workers, 1u);
}

TEST_F(SchedulerTest, QuestionsGoOnlyToWorkersOfTheirModel) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("ra", "model-a", 3)).ok());
  ASSERT_TRUE(s_->AddRun(MakeRun("rb", "model-b", 3)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  Connect(&a, "wa", "model-a", 8);
  Connect(&b, "wb", "model-b", 8);
  for (const auto& l : a.TakeLeases()) EXPECT_EQ(l.key().run_id(), "ra");
  for (const auto& l : b.TakeLeases()) EXPECT_EQ(l.key().run_id(), "rb");
}

TEST_F(SchedulerTest, RunsOfOneModelShareWorkers) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 10)).ok());
  ASSERT_TRUE(s_->AddRun(MakeRun("r2", "m", 10)).ok());
  RecordingChannel& ch = NewChannel();
  Connect(&ch, "w", "m", 4);
  int r1 = 0, r2 = 0;
  for (const auto& l : ch.TakeLeases()) (l.key().run_id() == "r1" ? r1 : r2)++;
  EXPECT_EQ(r1, 2);
  EXPECT_EQ(r2, 2);
}

TEST_F(SchedulerTest, BackupCopiesOfStragglersAtTheTail) {
  Scheduler::Options o;
  o.backup_min_age = absl::Seconds(10);
  o.heartbeat_timeout = absl::Hours(1);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& slow = NewChannel();
  RecordingChannel& fast = NewChannel();
  std::string ws = Connect(&slow, "slow", "m", 2);
  auto leases = slow.TakeLeases();
  ASSERT_EQ(leases.size(), 2u);
  Deliver(ws, &slow, Answer(leases[0]));
  std::string wf = Connect(&fast, "fast", "m", 2);
  s_->Tick();
  EXPECT_TRUE(fast.TakeLeases().empty());  // not a straggler yet
  clock_.Advance(absl::Seconds(11));
  s_->Tick();
  auto backup = fast.TakeLeases();
  ASSERT_EQ(backup.size(), 1u);
  EXPECT_TRUE(backup[0].backup());
  EXPECT_EQ(backup[0].key().index(), 1u);
  EXPECT_EQ(s_->counters().backups, 1u);
  Deliver(wf, &fast, Answer(backup[0], "fast"));
  EXPECT_EQ(slow.Cancels(), std::vector<uint64_t>{leases[1].lease_id()});
  Deliver(ws, &slow, Answer(leases[1], "slow"));  // too late
  EXPECT_EQ(RunStatus("r1").duplicates(), 1u);
  Deliver(ws, &slow, CancelledCopy(leases[1], 0));  // it had finished
  EXPECT_EQ(Completed(), std::vector<std::string>{"r1"});
  // The late copy's request reached the server: the question counts it.
  auto snap = s_->Snapshot("r1");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->more_attempts.at(1), 1u);
}

// Today the requests of a cancelled backup copy were never counted, so
// records and manifest said fewer requests than the server saw.
TEST_F(SchedulerTest, RequestsOfCancelledAndLosingCopiesCountAndAreJournaled) {
  Scheduler::Options o;
  o.backup_min_age = absl::Seconds(1);
  o.heartbeat_timeout = absl::Hours(1);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 2);
  auto la = a.TakeLeases();
  ASSERT_EQ(la.size(), 2u);
  std::string wb = Connect(&b, "b", "m", 2);
  clock_.Advance(absl::Seconds(2));
  s_->Tick();
  auto lb = b.TakeLeases();
  ASSERT_EQ(lb.size(), 2u);  // a backup copy of each
  // Question 0: a fails after 2 requests while b still asks; b answers.
  v1::WorkerMessage failed = Fail(la[0]);
  failed.mutable_results(0)->mutable_failure()->set_attempts(2);
  Deliver(wa, &a, failed);
  Deliver(wb, &b, Answer(lb[0]));
  // Question 1: b answers first; a's copy had sent 3 requests.
  Deliver(wb, &b, Answer(lb[1]));
  EXPECT_EQ(a.Cancels(), std::vector<uint64_t>{la[1].lease_id()});
  EXPECT_TRUE(Completed().empty()) << "complete before the cancelled copy said what it sent";
  Deliver(wa, &a, CancelledCopy(la[1], 3));
  EXPECT_EQ(Completed(), std::vector<std::string>{"r1"});
  auto snap = s_->Snapshot("r1");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->more_attempts.at(0), 2u);
  EXPECT_EQ(snap->more_attempts.at(1), 3u);
  // A report for a lease never cancelled on that stream counts nothing.
  Deliver(wb, &b, CancelledCopy(lb[0], 50));
  EXPECT_EQ(s_->Snapshot("r1")->more_attempts.at(0), 2u);
}

TEST_F(SchedulerTest, AWorkerThatLeavesBeforeReportingItsCancelledCopyDoesNotHoldTheRun) {
  Scheduler::Options o;
  o.backup_min_age = absl::Seconds(1);
  o.heartbeat_timeout = absl::Hours(1);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 1)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 1);
  auto la = a.TakeLeases();
  std::string wb = Connect(&b, "b", "m", 1);
  clock_.Advance(absl::Seconds(2));
  s_->Tick();
  auto lb = b.TakeLeases();
  ASSERT_EQ(lb.size(), 1u);
  Deliver(wb, &b, Answer(lb[0]));
  EXPECT_TRUE(Completed().empty());
  s_->Disconnect(wa, &a);
  EXPECT_EQ(Completed(), std::vector<std::string>{"r1"});
}

TEST_F(SchedulerTest, AFailureDoesNotSettleAQuestionAnotherCopyStillAsks) {
  Scheduler::Options o;
  o.backup_min_age = absl::Seconds(1);
  o.heartbeat_timeout = absl::Hours(1);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 1)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 1);
  auto la = a.TakeLeases();
  std::string wb = Connect(&b, "b", "m", 1);
  clock_.Advance(absl::Seconds(2));
  s_->Tick();
  auto lb = b.TakeLeases();
  ASSERT_EQ(lb.size(), 1u);
  Deliver(wa, &a, Fail(la[0]));
  EXPECT_EQ(RunStatus("r1").failed(), 0u);
  Deliver(wb, &b, Answer(lb[0]));
  EXPECT_EQ(RunStatus("r1").answered(), 1u);
}

TEST_F(SchedulerTest, FailedQuestionsCanBeReopened) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& ch = NewChannel();
  std::string w = Connect(&ch, "w", "m", 4);
  auto leases = ch.TakeLeases();
  Deliver(w, &ch, Answer(leases[0]));
  Deliver(w, &ch, Fail(leases[1]));
  ASSERT_EQ(Completed().size(), 1u);
  s_->FinishMerge("r1", absl::OkStatus());
  v1::RunStatus st = RunStatus("r1");
  EXPECT_EQ(st.state(), "incomplete");
  ASSERT_EQ(st.failed_questions_size(), 1);
  EXPECT_EQ(st.failed_questions(0), "D:2: HTTP 400: too long");
  EXPECT_EQ(s_->FindRunByKey("key-r1"), "r1");
  EXPECT_EQ(*s_->Reopen("r1"), 1u);
  auto again = ch.TakeLeases();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].key().index(), 1u);
  EXPECT_EQ(RunStatus("r1").state(), "running");
}

TEST_F(SchedulerTest, AReconnectingWorkerKeepsWhatItStillAsks) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 3)).ok());
  RecordingChannel& a1 = NewChannel();
  std::string wa = Connect(&a1, "a", "m", 3);
  auto leases = a1.TakeLeases();
  ASSERT_EQ(leases.size(), 3u);
  s_->Disconnect(wa, &a1);
  // It comes back still working on question 1; a new worker must not get it.
  RecordingChannel& a2 = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa2 = Connect(&a2, "a", "m", 1, 0, {leases[1].key()});
  EXPECT_TRUE(a2.TakeLeases().empty());  // its one credit is taken by question 1
  Connect(&b, "b", "m", 8);
  auto to_b = b.TakeLeases();
  ASSERT_EQ(to_b.size(), 2u);
  for (const auto& l : to_b) EXPECT_NE(l.key().index(), 1u);
  Deliver(wa2, &a2, Answer(leases[1]));
  EXPECT_EQ(RunStatus("r1").answered(), 1u);
  EXPECT_EQ(RunStatus("r1").duplicates(), 0u);
}

TEST_F(SchedulerTest, WaitsForWorkersAfterARestart) {
  Scheduler::Options o;
  o.startup_grace = absl::Seconds(5);
  Start(o);
  LoadedRun r = MakeRun("r1", "m", 3);
  r.state[0] = kAnswered;  // recovered from a journal
  ASSERT_TRUE(s_->AddRun(std::move(r)).ok());
  RecordingChannel& ch = NewChannel();
  Connect(&ch, "w", "m", 8);
  EXPECT_TRUE(ch.TakeLeases().empty());
  clock_.Advance(absl::Seconds(6));
  s_->Tick();
  EXPECT_EQ(ch.TakeLeases().size(), 2u);
}

TEST_F(SchedulerTest, GrantsShareTheModelsRequestBudget) {
  Start();
  LoadedRun r = MakeRun("r1", "m", 50);
  r.spec.mutable_limits()->set_rpm(120);  // 2 per second, bursts of 1
  ASSERT_TRUE(s_->AddRun(std::move(r)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 4);
  std::string wb = Connect(&b, "b", "m", 4);
  EXPECT_EQ(a.Count([](const auto& m) { return m.runs_size() > 0 && m.runs(0).rate_limited(); }),
            1);
  auto grants = [](RecordingChannel& ch) {
    return ch.Count([](const auto& m) { return static_cast<int>(m.grants()); });
  };
  v1::WorkerMessage want;
  want.set_want_grants(4);
  Deliver(wa, &a, want);
  Deliver(wb, &b, want);
  EXPECT_EQ(grants(a) + grants(b), 1);  // the burst
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    s_->Tick();
  }
  // Five more seconds at two a second, shared evenly.
  EXPECT_EQ(grants(a) + grants(b), 8);  // both asked for 4
  EXPECT_EQ(grants(a), 4);
  EXPECT_EQ(grants(b), 4);
  // Grants on the way are not granted twice.
  v1::WorkerMessage stale;
  stale.set_want_grants(4);
  stale.set_grants_seen(0);
  Deliver(wa, &a, stale);
  clock_.Advance(absl::Seconds(1));
  s_->Tick();
  EXPECT_EQ(grants(a), 4);
}

TEST_F(SchedulerTest, A429WithRetryAfterPausesTheWholeModel) {
  Start();
  LoadedRun r = MakeRun("r1", "m", 10);
  r.spec.mutable_limits()->set_rpm(6000);
  ASSERT_TRUE(s_->AddRun(std::move(r)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  RecordingChannel& other = NewChannel();
  std::string wa = Connect(&a, "a", "m", 2);
  std::string wb = Connect(&b, "b", "m", 2);
  Connect(&other, "o", "other-model", 2);
  v1::WorkerMessage hit;
  hit.set_pause_model_ms(3000);
  Deliver(wa, &a, hit);
  auto paused = [](RecordingChannel& ch) {
    return ch.Count([](const auto& m) { return m.pause_ms() > 0 ? 1 : 0; });
  };
  EXPECT_EQ(paused(a), 1);
  EXPECT_EQ(paused(b), 1);
  EXPECT_EQ(paused(other), 0);
  EXPECT_EQ(s_->counters().model_pauses, 1u);
  // No grants while paused; a worker joining now hears of the pause.
  v1::WorkerMessage want;
  want.set_want_grants(2);
  Deliver(wb, &b, want);
  s_->Tick();
  EXPECT_EQ(b.Count([](const auto& m) { return static_cast<int>(m.grants()); }), 0);
  RecordingChannel& late = NewChannel();
  Connect(&late, "late", "m", 2);
  EXPECT_EQ(paused(late), 1);
  clock_.Advance(absl::Seconds(4));
  s_->Tick();
  EXPECT_EQ(b.Count([](const auto& m) { return static_cast<int>(m.grants()); }), 2);
}

TEST_F(SchedulerTest, APausedWorkerGetsNoWorkUntilItResumes) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 6)).ok());
  RecordingChannel& a = NewChannel();
  std::string wa = Connect(&a, "a", "m", 2);
  auto leases = a.TakeLeases();
  ASSERT_EQ(leases.size(), 2u);
  v1::WorkerMessage pause;
  pause.set_accepting(false);
  pause.add_released(leases[0].lease_id());
  pause.add_released(leases[1].lease_id());
  Deliver(wa, &a, pause);
  EXPECT_TRUE(a.TakeLeases().empty());
  v1::WorkerMessage resume;
  resume.set_accepting(true);
  Deliver(wa, &a, resume);
  auto again = a.TakeLeases();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].key().index(), 1u);  // returned questions go first
}

TEST_F(SchedulerTest, DrainingAndErroredWorkersGetNoWork) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 6)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 2);
  auto leases = a.TakeLeases();
  v1::WorkerMessage drain;
  drain.set_draining(true);
  drain.add_released(leases[1].lease_id());
  Deliver(wa, &a, drain);
  Deliver(wa, &a, Answer(leases[0]));
  EXPECT_TRUE(a.TakeLeases().empty());
  v1::WorkerMessage err;
  err.mutable_error()->set_message("HTTP 401: bad key");
  std::string wb = Connect(&b, "b", "m", 2);
  EXPECT_EQ(b.TakeLeases().size(), 2u);  // including the released one
  Deliver(wb, &b, err);
  s_->Disconnect(wb, &b);
  v1::StatusResponse st = s_->Status("");
  bool listed = false;
  for (const auto& w : st.workers()) {
    if (w.worker_id() == "b") {
      listed = true;
      EXPECT_FALSE(w.connected());
      EXPECT_EQ(w.error(), "HTTP 401: bad key");
    }
  }
  EXPECT_TRUE(listed);
}

// A VLM run: `n` questions showing img/a.png; its images loaded or not.
LoadedRun MakeVlmRun(const std::string& dir, const std::string& id, int n, bool load_images) {
  const std::string root = JoinPath(dir, id);
  testing::WriteImage(JoinPath(root, "img/a.png"), "png", 16, 12);
  std::string lines;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&lines, R"({"question": "v)", i,
                    R"(", "img_path": "img/a.png", "answer": "", "other": {"id": )", i, "}}\n");
  }
  testing::WriteText(JoinPath(root, "MedVQA.jsonl"), lines);
  LoadedRun r;
  r.spec.set_run_id(id);
  r.spec.set_model("vlm");
  r.spec.set_track("v4-vlm");
  auto suite = LoadSuite(root, LoadOptions());
  EXPECT_TRUE(suite.ok()) << suite.status();
  r.suite = std::make_shared<const Suite>(std::move(*suite));
  if (load_images) {
    auto images = RunImages::Load(*r.suite, root, JoinPath(dir, "pdf"), PdfRenderOptions());
    EXPECT_TRUE(images.ok()) << images.status();
    r.images = *images;
  }
  r.journal = *JournalFile::Create(JoinPath(dir, id + ".journal"), id);
  r.state.assign(n, kPending);
  r.offset.assign(n, 0);
  r.output_dir = JoinPath(dir, id + ".out");
  return r;
}

TEST_F(SchedulerTest, AVlmRunWithoutItsImagesIsRefused) {
  Start();
  absl::Status st = s_->AddRun(MakeVlmRun(dir_.path(), "v1", 3, /*load_images=*/false));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("MedVQA:1"), std::string::npos) << st;
  EXPECT_FALSE(s_->HasRun("v1"));
}

TEST_F(SchedulerTest, VlmLeasesNameTheirImagesAndCarryNoBytes) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeVlmRun(dir_.path(), "v1", 4, /*load_images=*/true)).ok());
  RecordingChannel ch;
  Connect(&ch, "w", "vlm", 4);
  std::vector<v1::Lease> leases = ch.TakeLeases();
  ASSERT_EQ(leases.size(), 4u);
  const std::string png = testing::ReadText(dir_ / "v1/img/a.png");
  for (const v1::Lease& l : leases) {
    ASSERT_EQ(l.images_size(), 1);
    EXPECT_EQ(l.images(0).path(), "img/a.png");
    EXPECT_EQ(l.images(0).mime_type(), "image/png");
    EXPECT_TRUE(l.images(0).data().empty()) << "bytes copied into a lease";
    EXPECT_EQ(l.images(0).sha256(), Sha256Hex(png));
  }
  // The stream finds the bytes by name.
  auto bytes = ImageStore::Global().Get(Sha256Hex(png));
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(*bytes, png);
}

TEST_F(SchedulerTest, TheCoordinatorCapsAPauseAndShowsWhenTheModelResumes) {
  Scheduler::Options o;
  o.max_pause = absl::Seconds(5);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 4)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 1);
  Connect(&b, "b", "m", 1);
  EXPECT_EQ(RunStatus("r1").paused_until_unix_ms(), 0);
  v1::WorkerMessage hit;
  hit.set_pause_model_ms(3600 * 1000);  // Retry-After: an hour
  Deliver(wa, &a, hit);
  for (RecordingChannel* ch : {&a, &b}) {
    EXPECT_EQ(ch->Count([](const auto& m) { return static_cast<int>(m.pause_ms()); }), 5000);
  }
  EXPECT_EQ(RunStatus("r1").paused_until_unix_ms(),
            absl::ToUnixMillis(clock_.Now() + absl::Seconds(5)));
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(RunStatus("r1").paused_until_unix_ms(), 0);
}

TEST_F(SchedulerTest, NoBackupCopiesWhileTheModelIsPaused) {
  Scheduler::Options o;
  o.backup_min_age = absl::Seconds(10);
  o.heartbeat_timeout = absl::Hours(1);
  Start(o);
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 2)).ok());
  RecordingChannel& slow = NewChannel();
  RecordingChannel& idle = NewChannel();
  std::string ws = Connect(&slow, "slow", "m", 2);
  auto leases = slow.TakeLeases();
  ASSERT_EQ(leases.size(), 2u);
  Deliver(ws, &slow, Answer(leases[0]));
  Connect(&idle, "idle", "m", 2);
  v1::WorkerMessage hit;
  hit.set_pause_model_ms(60 * 1000);
  Deliver(ws, &slow, hit);
  clock_.Advance(absl::Seconds(30));
  s_->Tick();
  EXPECT_TRUE(idle.TakeLeases().empty()) << "a backup would only wait for the same pause";
  EXPECT_EQ(s_->counters().backups, 0u);
  clock_.Advance(absl::Seconds(31));
  s_->Tick();
  EXPECT_EQ(idle.TakeLeases().size(), 1u);
}

TEST_F(SchedulerTest, AWorkerWhoseEndpointIsDownGetsNoWorkAndTheRunSaysWhy) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 10)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  std::string wa = Connect(&a, "a", "m", 2);
  std::string wb = Connect(&b, "b", "m", 2);
  auto la = a.TakeLeases();
  auto lb = b.TakeLeases();
  ASSERT_EQ(la.size(), 2u);
  v1::WorkerMessage down;
  down.mutable_endpoint_state()->set_down(true);
  down.mutable_endpoint_state()->set_reason("connection refused");
  down.mutable_endpoint_state()->set_since_unix_ms(1000);
  down.mutable_endpoint_state()->set_probe_interval_ms(2000);
  for (const auto& l : la) down.add_released(l.lease_id());
  Deliver(wa, &a, down);
  EXPECT_TRUE(a.TakeLeases().empty());
  EXPECT_FALSE(RunStatus("r1").endpoint_state().down()) << "b still works";
  v1::WorkerMessage down_b = down;
  down_b.clear_released();
  for (const auto& l : lb) down_b.add_released(l.lease_id());
  Deliver(wb, &b, down_b);
  v1::RunStatus st = RunStatus("r1");
  EXPECT_TRUE(st.endpoint_state().down());
  EXPECT_EQ(st.endpoint_state().reason(), "connection refused");
  EXPECT_EQ(st.leased(), 0u);
  EXPECT_EQ(st.failed(), 0u);
  v1::StatusResponse all = s_->Status("");
  for (const auto& w : all.workers()) EXPECT_TRUE(w.endpoint_state().down()) << w.worker_id();
  v1::WorkerMessage up;
  up.mutable_endpoint_state();  // down = false
  Deliver(wa, &a, up);
  EXPECT_EQ(a.TakeLeases().size(), 2u);
  EXPECT_FALSE(RunStatus("r1").endpoint_state().down());
}

// A full disk used to put the question straight back in the queue: the run
// asked the model again and again, forever, without saving anything.
TEST_F(SchedulerTest, AFailedJournalWriteStopsTheRunInsteadOfAskingAgain) {
  testing::FaultyFileOps faults(dir_.path());
  testing::ScopedFileOps installed(&faults);
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 20)).ok());
  RecordingChannel& ch = NewChannel();
  std::string w = Connect(&ch, "w1", "m", 4);
  auto leases = ch.TakeLeases();
  ASSERT_EQ(leases.size(), 4u);
  Deliver(w, &ch, Answer(leases[0]));
  journal_.Flush();
  faults.FailWritesAfter("r1.journal", 0, ENOSPC);
  Deliver(w, &ch, Answer(leases[1]));
  journal_.Flush();
  v1::RunStatus st = RunStatus("r1");
  EXPECT_EQ(st.state(), "stopped");
  EXPECT_EQ(st.answered(), 1u);
  EXPECT_TRUE(absl::StrContains(st.error(), absl::StrCat("no space left on ", dir_.path())))
      << st.error();
  EXPECT_TRUE(absl::StrContains(st.error(), "1 answers saved; free space and run the same "
                                            "command again"))
      << st.error();
  EXPECT_EQ(ch.Acks(), 1);  // the unsaved answer is not acknowledged
  // The other leases are cancelled, and nothing more is handed out, however
  // many results or credits come back.
  EXPECT_GE(ch.Cancels().size(), 2u);
  ch.TakeLeases();
  faults.Heal();
  Deliver(w, &ch, Answer(leases[2]));
  Deliver(w, &ch, Answer(leases[3]));
  journal_.Flush();
  EXPECT_TRUE(ch.TakeLeases().empty());
  EXPECT_EQ(RunStatus("r1").answered(), 1u);
  EXPECT_EQ(s_->Reopen("r1").status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace medeval
