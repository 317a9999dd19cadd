// Shows the progress of runs: on a terminal a live bar per run (done/total,
// answers/s, ETA, retries, failures, and what stops it: a paused model, an
// endpoint that is down, no worker at all, Batch API batches still running) that fits the
// terminal's width and keeps every message printed meanwhile above it; otherwise one plain line
// every few seconds, fit for logs.
//
// Thread-safety: Update and Done from one thread; Print (and log lines,
// which a terminal display takes over while it lives) from any thread.
#ifndef MEDEVAL_CLIENT_PROGRESS_H_
#define MEDEVAL_CLIENT_PROGRESS_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/medeval.pb.h"

namespace medeval {

// What the workers tell about one model.
struct ModelHealth {
  int workers = 0;   // connected
  int paused = 0;    // of them, paused (model server restarting, rate limit)
  std::string down;  // why its endpoint is down, when a worker says so
};

// The health of `model` from a status report's workers.
ModelHealth HealthOf(const std::string& model, const std::vector<v1::WorkerStatus>& workers);

class ProgressReporter {
 public:
  // `columns`: the terminal's width; 0 asks the terminal (stderr) at each
  // redraw, then $COLUMNS, then 80.
  ProgressReporter(std::ostream& out, bool tty, absl::Duration plain_interval = absl::Seconds(5),
                   int columns = 0);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Redraws (terminal) or prints a line if the interval has passed.
  void Update(const std::vector<v1::RunStatus>& runs, const std::vector<v1::WorkerStatus>& workers);
  // Prints `text` (whole lines) above the live display, which is drawn again
  // below it.
  void Print(const std::string& text);
  // Leaves the last state on screen and moves past it.
  void Done();

  // One run's line, e.g. "Qwen [#####.....] 812/1,620 50% 123.4/s ETA 7s
  // retries 3 failed 0", at most `columns - 1` characters wide (0: no limit).
  static std::string Line(const v1::RunStatus& run, bool bar, int columns = 0,
                          const ModelHealth* health = nullptr);

 private:
  int Columns() const;

  std::ostream& out_;
  const bool tty_;
  const absl::Duration interval_;
  const int columns_;
  absl::Mutex mu_;
  absl::Time last_plain_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string frame_ ABSL_GUARDED_BY(mu_);  // the live lines, as last drawn
  size_t drawn_ ABSL_GUARDED_BY(mu_) = 0;   // lines of frame_ on screen
};

// "1h02m", "3m07s", "12s".
std::string ShortDuration(double seconds);

// "auto 48 in flight (latency grew)": a model's auto concurrency limit and
// why it last changed, for the progress line and `status`.
std::string ConcurrencyText(const v1::RunStatus& r);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_PROGRESS_H_
