// The --batch flags of `run` and `worker`: answer through the provider's
// Batch API (worker/batch_runner.h), its limits, polling and exit policy.
#ifndef MEDEVAL_CLI_BATCH_FLAGS_H_
#define MEDEVAL_CLI_BATCH_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "worker/batch_runner.h"

namespace medeval::cli {

struct BatchFlags {
  bool batch = false;
  // "" (not given): `run` asks at Ctrl-C when stdin is a terminal, and
  // keeps the batches otherwise.
  std::string on_exit;
  std::string retry = "online";
  int64_t max_lines = 50000;
  int64_t max_bytes = 200 << 20;
  int64_t max_enqueued_tokens = 0;
  double poll_s = 5;
  double linger_s = 2;
  std::string state_dir;
  // `state_dir_flag`: offer --batch-state-dir (a distributed worker; `run`
  // keeps batch ids in OUT/.medeval/batches).
  void Add(CLI::App* app, bool state_dir_flag);
  BatchSettings Settings() const;
  // Whether `run` should ask at Ctrl-C (batch mode, no --batch-on-exit).
  bool AskOnExit() const { return batch && on_exit.empty(); }
};

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_BATCH_FLAGS_H_
