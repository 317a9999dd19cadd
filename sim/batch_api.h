// The simulated server's OpenAI Batch API: files (upload, metadata, content,
// delete) and batches (create, get, list, cancel) over the same answer model
// as the online chat endpoint.
//
// A batch moves through validating -> in_progress -> finalizing -> completed
// (or failed: the input file is invalid, each problem reported with its line;
// expired: the window ended first; cancelling -> cancelled). Lines are
// processed at `lines_per_s` in input order, so request_counts grow with
// time; the output file lists results in an order unrelated to the input's,
// as real providers do, and a client must match them by custom_id. State
// advances lazily, whenever a request looks at the batch (a batch's state is
// a function of the time since it was created).
//
// Thread-safety: every method is thread-safe (one mutex).
#ifndef MEDEVAL_SIM_BATCH_API_H_
#define MEDEVAL_SIM_BATCH_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "sim/answer_model.h"

namespace medeval::sim {

struct BatchOptions {
  double lines_per_s = 1000;    // processing speed; 0: every line at once
  double validate_ms = 100;     // time spent in "validating"
  double finalize_ms = 100;     // time spent in "finalizing" (and "cancelling")
  double expire_s = 24 * 3600;  // the completion window the server enforces
  double line_fail_rate = 0;    // lines answered with a 500 in the error file
  int64_t max_lines = 50000;    // per input file (OpenAI's limit)
  int64_t max_file_bytes = 200 << 20;
  int64_t max_enqueued_tokens = 0;  // prompt tokens of unfinished batches; 0: no limit
};

struct BatchHttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class BatchApi {
 public:
  struct Hooks {
    std::function<void(const std::string& question, int images)> on_request;
    std::function<void(const std::string& question)> on_answered;
  };
  BatchApi(BatchOptions options, AnswerStyle style, Hooks hooks);
  ~BatchApi();

  // Serves /v1/files... and /v1/batches...; nullopt for other paths.
  std::optional<BatchHttpResponse> Handle(absl::string_view method, absl::string_view path,
                                          absl::string_view query, absl::string_view content_type,
                                          const std::string& body);
  // The "batch" part of /stats.
  nlohmann::json Stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_BATCH_API_H_
