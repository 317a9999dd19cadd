// A new VLM run over the same questions and settings as an earlier run, with
// some images changed or added, takes over the earlier run's answers of every
// question whose text and images are unchanged: a rerun asks exactly the
// questions whose images changed or appeared.
//
// Thread-safety: call before the run is added to the scheduler (it touches
// only the new run and reads the earlier one's files).
#ifndef MEDEVAL_COORDINATOR_RUN_SEED_H_
#define MEDEVAL_COORDINATOR_RUN_SEED_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/journal.h"
#include "coordinator/run_state.h"
#include "coordinator/state_dir.h"

namespace medeval {

// Finds the latest earlier run with `run->spec.answers_key()` (and another
// idempotency key) in `dir`, journals its answers of the unchanged questions
// as answers of `run` and marks them answered. Returns how many were taken.
// A run for which `in_use` is true (loaded and maybe still journaling) is not
// read: its questions are asked again instead.
absl::StatusOr<size_t> SeedFromEarlierRun(const StateDir& dir, JournalWriter& writer,
                                          const std::function<bool(const std::string&)>& in_use,
                                          LoadedRun* run);

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_RUN_SEED_H_
