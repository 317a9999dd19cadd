// A client of an OpenAI-compatible Batch API (OpenAI, Azure, Bailian,
// Together, SGLang, `medeval sim`): upload an input file, create a batch
// over it, look at it, cancel it, download its output and error files.
//
// Calls block until the server answers (or the timeout passes): make them
// from a thread of your own, never from the HTTP loop. Errors: kUnavailable
// for what may pass (connection, timeout, 429, 5xx), kFailedPrecondition for
// a refused key (401/403), kNotFound (404), kInvalidArgument for other 4xx.
// Every request carries the worker's extra headers (--header, --header-env),
// as online requests do, and no message holds a credential's value.
//
// Thread-safety: thread-safe (the HTTP client is; the rest is immutable). A
// client is cheap to make: one per endpoint and header set in use.
#ifndef MEDEVAL_WORKER_BATCH_CLIENT_H_
#define MEDEVAL_WORKER_BATCH_CLIENT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/url.h"
#include "worker/http_client.h"

namespace medeval {

struct BatchInfo {
  std::string id;
  std::string status;  // validating, in_progress, finalizing, completed, failed, expired,
                       // cancelling, cancelled; "lost" (ours): the endpoint forgot it
  std::string input_file_id;
  std::string output_file_id;  // "" until there is one
  std::string error_file_id;
  int64_t total = 0, completed = 0, failed = 0;
  int64_t created_at = 0, expires_at = 0;  // unix seconds
  std::string errors;                      // validation errors, "line N: message; ..."

  // completed, failed, expired or cancelled: nothing more will happen.
  bool terminal() const;
};

class BatchClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // `base`: the endpoint's API base ("http://host/v1"); `headers`: sent with
  // every request.
  BatchClient(HttpClient* http, std::string base, std::string api_key, Headers headers = {},
              absl::Duration timeout = absl::Seconds(120));

  absl::StatusOr<std::string> UploadFile(const std::string& filename, const std::string& jsonl);
  absl::StatusOr<BatchInfo> Create(const std::string& input_file_id,
                                   const nlohmann::json& metadata);
  absl::StatusOr<BatchInfo> Get(const std::string& batch_id);
  // The batch created over `input_file_id`, if any (newest first, up to
  // `max_pages` pages of 100).
  absl::StatusOr<BatchInfo> FindByInputFile(const std::string& input_file_id, int max_pages = 10);
  absl::StatusOr<BatchInfo> Cancel(const std::string& batch_id);
  absl::StatusOr<std::string> Content(const std::string& file_id);
  absl::Status DeleteFile(const std::string& file_id);

 private:
  absl::StatusOr<std::string> Call(const std::string& method, const std::string& path,
                                   std::string body, const std::string& content_type);

  HttpClient* const http_;
  const std::string base_;
  const std::string api_key_;
  const Headers headers_;
  const absl::Duration timeout_;
};

// The API base of an endpoint whose chat URL is ".../chat/completions".
std::string ApiBase(const Endpoint& endpoint);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_BATCH_CLIENT_H_
