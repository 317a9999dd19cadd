// Writes a finished run's outputs, in the platform's layout:
//
//   <Folder>/<Dataset>.jsonl  each input line, in order, with "answer" filled
//   <Folder>.zip              the upload (when every question is answered,
//                             or the run allows an incomplete zip)
//   records.jsonl             one line per question: what the model said
//   manifest.json             settings, counts, SHA-256 of inputs and outputs
//
// The folder is built under a temporary name and swapped in whole.
//
// Thread-safe (works on a snapshot); run it off the gRPC threads.
#ifndef MEDEVAL_COORDINATOR_RUN_OUTPUT_H_
#define MEDEVAL_COORDINATOR_RUN_OUTPUT_H_

#include <string>

#include "absl/status/status.h"
#include "coordinator/run_state.h"

namespace medeval {

absl::Status WriteRunOutputs(const RunSnapshot& snapshot, const std::string& input_dir);

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_RUN_OUTPUT_H_
