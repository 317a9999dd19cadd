// `medeval batch import`: a batch's output (from `vllm run-batch` or a
// provider's Batch API, for a file `medeval batch export` wrote) becomes a
// normal result folder: answer files, upload zip, records.jsonl, manifest.
//
// The answers go through the same path as a `medeval run` with the same
// model and settings: the run (same identity, in OUT/.medeval) is created or
// resumed on an embedded coordinator, and an in-process answerer takes its
// leases and answers each from the result line with the question's
// custom_id, journaled once. Questions without a line, or whose line is an
// error, are recorded as failed with the reason and listed: running the same
// `medeval run` (or another import) later asks only them. The output folder
// is checked as `run` checks it (client/run_folder.h): another run's result
// there is replaced only with `replace`.
//
// Thread-safety: for the command's main thread.
#ifndef MEDEVAL_LOCAL_BATCH_IMPORT_H_
#define MEDEVAL_LOCAL_BATCH_IMPORT_H_

#include <ostream>
#include <string>
#include <vector>

#include "local/run_job.h"

namespace medeval {

struct BatchImportOptions {
  SuiteSelection suite;
  std::string model;
  v1::RequestParams params;
  v1::ModelLimits limits;
  v1::ModelPrice price;
  std::vector<std::string> results;  // output (and error) files, JSONL
  std::string out_dir = "results";
  bool allow_incomplete_zip = false;
  // Replace another run's result in OUT/<model> (as `run --replace`).
  bool replace = false;
};

// Returns the exit code (kJobOk, kJobFailed with failures listed,
// kJobBadInput for an unreadable results file, named by path:line).
int RunBatchImport(const BatchImportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_BATCH_IMPORT_H_
