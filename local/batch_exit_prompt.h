// The question `medeval run --batch` asks at Ctrl-C when `--batch-on-exit`
// was not given and a person is at the terminal: cancel the run's unfinished
// batches (nothing more is billed for lines not yet run) or leave them
// running for a rerun to collect (the default, and the only choice when
// nobody can answer).
//
// Behind a small interface so the job can be driven by a test; the terminal
// version reads a line with a time limit, so a question nobody sees never
// holds the exit up for long. It runs on the command's main thread, never
// in a gRPC reaction.
//
// Thread-safety: one Ask at a time.
#ifndef MEDEVAL_LOCAL_BATCH_EXIT_PROMPT_H_
#define MEDEVAL_LOCAL_BATCH_EXIT_PROMPT_H_

#include <string>

#include "absl/time/time.h"

namespace medeval {

class BatchExitPrompt {
 public:
  virtual ~BatchExitPrompt() = default;
  // Shows `question` (which describes the batches) and returns true when the
  // answer is to cancel them.
  virtual bool CancelBatches(const std::string& question) = 0;
};

// Writes the question to `out_fd` and reads one line from `in_fd` (a
// terminal): "c" or "cancel" (any case) cancels; anything else, end of input
// or no answer within `timeout` keeps the batches running.
class TerminalBatchExitPrompt : public BatchExitPrompt {
 public:
  TerminalBatchExitPrompt(int in_fd, int out_fd, absl::Duration timeout = absl::Seconds(60))
      : in_fd_(in_fd), out_fd_(out_fd), timeout_(timeout) {}
  bool CancelBatches(const std::string& question) override;

 private:
  const int in_fd_;
  const int out_fd_;
  const absl::Duration timeout_;
};

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_BATCH_EXIT_PROMPT_H_
