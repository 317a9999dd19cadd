// The live progress display on a (simulated) terminal: lines fit the width,
// messages printed meanwhile stay above the bars, no stale bar line is left,
// and a paused model, an endpoint that is down and a model without workers
// are shown.
#include "client/progress.h"

#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/batch_view.h"
#include "common/log.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

// The screen a VT100 shows for `bytes`: handles \r, \n, ESC[nA, ESC[2K and
// ESC[J, wraps at `columns`.
std::vector<std::string> Screen(const std::string& bytes, size_t columns) {
  std::vector<std::string> rows(1);
  size_t row = 0, col = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      size_t j = i + 2;
      int n = 0;
      while (j < bytes.size() && isdigit(static_cast<unsigned char>(bytes[j]))) {
        n = n * 10 + (bytes[j] - '0');
        ++j;
      }
      const char cmd = bytes[j];
      if (cmd == 'A') row = row >= static_cast<size_t>(n) ? row - n : 0;
      if (cmd == 'K') rows[row].clear();
      if (cmd == 'J') {
        rows[row].resize(std::min(rows[row].size(), col));
        rows.resize(row + 1);
      }
      i = j;
      continue;
    }
    if (c == '\r') {
      col = 0;
    } else if (c == '\n') {
      ++row;
      col = 0;
      if (rows.size() <= row) rows.resize(row + 1);
    } else {
      if (col >= columns) {  // the terminal wraps
        ++row;
        col = 0;
        if (rows.size() <= row) rows.resize(row + 1);
      }
      if (rows[row].size() <= col) rows[row].resize(col + 1, ' ');
      rows[row][col++] = c;
    }
  }
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  return rows;
}

v1::RunStatus RunAt(const std::string& model, uint64_t done) {
  v1::RunStatus r;
  r.set_model(model);
  r.set_state("running");
  r.set_total(1620);
  r.set_answered(done);
  r.set_retries(7);
  r.set_failed(2);
  r.set_rate(50);
  r.set_eta_s(30);
  return r;
}

v1::WorkerStatus Worker(const std::string& model) {
  v1::WorkerStatus w;
  w.set_model(model);
  w.set_connected(true);
  return w;
}

TEST(ProgressTest, WarningsStayAboveTheBarsAndNoStaleLineIsLeft) {
  std::ostringstream out;
  const std::string model = "Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4-with-a-very-long-suffix";
  {
    ProgressReporter p(out, /*tty=*/true, absl::Seconds(5), /*columns=*/80);
    p.Update({RunAt(model, 100), RunAt("m2", 5)}, {Worker(model), Worker("m2")});
    MEDEVAL_LOG(WARNING) << "first warning";
    p.Update({RunAt(model, 200), RunAt("m2", 6)}, {Worker(model), Worker("m2")});
    p.Print("medeval: second warning\n");
    p.Update({RunAt(model, 300)}, {Worker(model)});  // one run left: a shorter display
    p.Done();
  }
  std::vector<std::string> screen = Screen(out.str(), 80);
  ASSERT_EQ(screen.size(), 4u) << out.str();
  EXPECT_TRUE(absl::StrContains(screen[0], "first warning")) << screen[0];
  EXPECT_EQ(screen[1], "medeval: second warning");
  EXPECT_TRUE(absl::StrContains(screen[2], "302/1,620")) << screen[2];  // answered + failed
  EXPECT_TRUE(absl::StrContains(screen[2], "retries 7 failed 2")) << screen[2];
  EXPECT_EQ(screen[3], "1 workers connected");
}

TEST(ProgressTest, LinesFitTheTerminalWidth) {
  const std::string model(120, 'M');
  for (int columns : {40, 60, 80, 132}) {
    const std::string line = ProgressReporter::Line(RunAt(model, 800), true, columns);
    EXPECT_LT(line.size(), static_cast<size_t>(columns)) << line;
    std::ostringstream out;
    ProgressReporter p(out, true, absl::Seconds(5), columns);
    p.Update({RunAt(model, 800)}, {Worker(model)});
    p.Done();
    EXPECT_EQ(Screen(out.str(), columns).size(), 2u) << "wrapped at " << columns;
  }
  // A short name keeps everything.
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(RunAt("m", 800), true, 100),
                                "m [##############................] 802/1,620"))
      << ProgressReporter::Line(RunAt("m", 800), true, 100);
}

TEST(ProgressTest, PausedDownAndWorkerlessModelsAreShown) {
  v1::WorkerStatus paused = Worker("a");
  paused.set_paused(true);
  ModelHealth h = HealthOf("a", {paused});
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(RunAt("a", 1), true, 0, &h), "| paused"));
  v1::WorkerStatus down = Worker("b");
  down.set_error("cannot reach the model server");
  h = HealthOf("b", {down});
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(RunAt("b", 1), true, 0, &h),
                                "| endpoint down: cannot reach the model server"));
  h = HealthOf("c", {Worker("other")});
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(RunAt("c", 1), true, 0, &h), "| no worker"));
}

TEST(ProgressTest, AnAutoConcurrencyLimitIsShownWithWhyItLastChanged) {
  v1::RunStatus r = RunAt("m", 1);
  EXPECT_FALSE(absl::StrContains(ProgressReporter::Line(r, true, 0), "in flight"));
  r.set_concurrency_limit(48);
  r.set_concurrency_cause("latency");
  r.set_concurrency_reason("latency 2.10s without more throughput: less");
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(r, true, 0),
                                "| auto 48 in flight (latency grew)"))
      << ProgressReporter::Line(r, true, 0);
  r.set_concurrency_cause("rate_limited");
  EXPECT_TRUE(absl::StrContains(ProgressReporter::Line(r, true, 0), "(429s)"));
}

TEST(ProgressTest, RunningBatchesShowTheirStateCountsAndWait) {
  v1::RunStatus r = RunAt("m", 0);
  const absl::Time now = absl::Now();
  v1::BatchState* b = r.add_batches();
  b->set_batch_id("batch_1");
  b->set_status("in_progress");
  b->set_total(1620);
  b->set_completed(800);
  b->set_failed(12);
  b->set_created_unix_ms(absl::ToUnixMillis(now - absl::Seconds(187)));
  b->set_expires_unix_ms(absl::ToUnixMillis(now - absl::Seconds(187) + absl::Hours(24)));
  std::string line = ProgressReporter::Line(r, false);
  EXPECT_TRUE(absl::StrContains(line, "| batch in_progress 812/1,620, waited 3m0")) << line;
  EXPECT_TRUE(absl::StrContains(line, "s of 24h")) << line;
  EXPECT_TRUE(absl::StrContains(BatchText(*b, now),
                                "batch_1: in_progress 812/1,620 (12 failed), "
                                "waited 3m07s of the 24h window (ends "))
      << BatchText(*b, now);

  // Several: counted by state; finished ones are not waited for.
  v1::BatchState* v = r.add_batches();
  v->set_status("validating");
  v->set_total(100);
  v->set_created_unix_ms(absl::ToUnixMillis(now));
  v1::BatchState* done = r.add_batches();
  done->set_status("completed");
  done->set_total(50);
  done->set_completed(50);
  line = ProgressReporter::Line(r, false);
  EXPECT_TRUE(
      absl::StrContains(line, "| 2 batches: 1 in_progress, 1 validating, 812/1,720, waited"))
      << line;
  const v1::BatchState finished = *done;
  r.clear_batches();
  *r.add_batches() = finished;
  EXPECT_FALSE(absl::StrContains(ProgressReporter::Line(r, false), "batch"))
      << ProgressReporter::Line(r, false);
}

}  // namespace
}  // namespace medeval
