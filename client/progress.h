// Shows the progress of runs: on a terminal a live bar per run (done/total,
// answers/s, ETA, retries, failures); otherwise one plain line every few
// seconds, fit for logs.
//
// Not thread-safe: one thread updates it.
#ifndef MEDEVAL_CLIENT_PROGRESS_H_
#define MEDEVAL_CLIENT_PROGRESS_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/medeval.pb.h"

namespace medeval {

class ProgressReporter {
 public:
  ProgressReporter(std::ostream& out, bool tty, absl::Duration plain_interval = absl::Seconds(5));
  // Redraws (terminal) or prints a line if the interval has passed.
  void Update(const std::vector<v1::RunStatus>& runs, int workers);
  // Leaves the last state on screen and moves past it.
  void Done();

  // One run's line, e.g. "Qwen [#####.....] 812/1620 50% 123.4/s ETA 7s ...".
  static std::string Line(const v1::RunStatus& run, bool bar, int width = 30);

 private:
  std::ostream& out_;
  const bool tty_;
  const absl::Duration interval_;
  absl::Time last_plain_ = absl::InfinitePast();
  size_t drawn_ = 0;  // lines drawn last time (terminal)
};

// "1h02m", "3m07s", "12s".
std::string ShortDuration(double seconds);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_PROGRESS_H_
