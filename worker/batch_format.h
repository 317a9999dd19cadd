// The OpenAI batch file format, as providers (OpenAI, Azure, Bailian,
// Together, SGLang's /v1/batches) and `vllm run-batch` read and write it.
//
// Input, one request a line: {"custom_id", "method": "POST", "url":
// "/v1/chat/completions", "body": <the request the online path sends>}.
// Output and error files, one result a line in any order: {"custom_id",
// "response": {"status_code", "body"} or null, "error": {"code", "message"}
// or null}.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_WORKER_BATCH_FORMAT_H_
#define MEDEVAL_WORKER_BATCH_FORMAT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/medeval.pb.h"

namespace medeval {

inline constexpr char kBatchEndpoint[] = "/v1/chat/completions";

// One input line (without the newline); `body` is a JSON object's text.
std::string BatchInputLine(absl::string_view custom_id, absl::string_view body);

// One line of an output or error file.
struct BatchLineResult {
  std::string custom_id;
  bool answered = false;
  v1::AnswerRecord record;  // answered: the answer, as the online path records it
  std::string error;        // otherwise: why not ("HTTP 500: ...", "batch_expired: ...")
  // The question itself is at fault (a 4xx other than 429, nothing within
  // max_tokens): asking again with the same settings does not help.
  bool question_fault = false;
};

// kInvalidArgument when the line is not a batch result at all.
absl::StatusOr<BatchLineResult> ParseBatchResultLine(absl::string_view line);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_BATCH_FORMAT_H_
