// What a run is, as a client states it to a coordinator: the suite selected
// from a folder and checked line by line, the request settings MedBench
// publishes with, and the RunSpec whose idempotency key names the run (the
// same model, questions, images and settings name the same run). Shared by
// `medeval run` (embedded) and `medeval submit` (remote).
//
// Thread-safety: the functions are pure apart from reading the suite folder.
#ifndef MEDEVAL_CLIENT_RUN_SPEC_H_
#define MEDEVAL_CLIENT_RUN_SPEC_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/suite.h"
#include "proto/medeval.pb.h"

namespace medeval {

struct SuiteSelection {
  std::string data_dir;
  std::optional<Track> track;
  std::vector<std::string> datasets;
  bool skip_invalid = false;
  v1::PdfOptions pdf;  // VLM: how PDF reports become pages (0: defaults)
};

// Exit codes of the commands that run or wait for runs.
inline constexpr int kJobOk = 0;
inline constexpr int kJobFailed = 1;
inline constexpr int kJobBadInput = 2;
inline constexpr int kJobInterrupted = 130;

// Loads and checks the suite; prints every bad line as "path:line: what" to
// `err`. Returns the exit code to stop with (kJobBadInput), or the suite.
absl::StatusOr<Suite> LoadSuiteForRun(const SuiteSelection& sel, std::ostream& err, int* exit_code);

// The run spec for `suite` and one model (idempotency key included: the same
// model, questions and settings name the same run).
v1::RunSpec MakeRunSpec(const Suite& suite, const std::string& model,
                        const v1::RequestParams& params, const v1::ModelLimits& limits,
                        const SuiteSelection& selection, bool allow_incomplete_zip);

// The request settings MedBench evaluations are published with: system prompt
// "You are a helpful assistant.", temperature 0, no max_tokens.
v1::RequestParams DefaultRequestParams();

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_RUN_SPEC_H_
