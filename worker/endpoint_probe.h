// The cheap check, before any question is asked, that an endpoint is an
// OpenAI-compatible API that answers and accepts the key: GET <base>/models
// must answer 200 with a JSON model list. The same judgement tells a worker
// whose endpoint was down that it is back.
//
// Thread-safe (each blocking call uses its own HTTP client; the rest is pure).
#ifndef MEDEVAL_WORKER_ENDPOINT_PROBE_H_
#define MEDEVAL_WORKER_ENDPOINT_PROBE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/chat_backend.h"
#include "worker/http_client.h"

namespace medeval {

struct ModelsCheck {
  std::vector<std::string> models;    // ids GET /models listed
  std::vector<std::string> warnings;  // e.g. the model is not among them
  absl::Duration latency;
};

// GET <base>/models with the key and the requests' extra headers (some
// gateways authenticate with them). Redirects are not followed.
HttpRequest ModelsRequest(const BackendConfig& backend, const v1::RequestParams& params,
                          absl::Duration timeout);

// Judges the answer to ModelsRequest. Errors, by what the caller should do:
//   kInvalidArgument  not an OpenAI-compatible API at this URL (an HTML 404
//                     from a web server, a 200 that is not a model list, a
//                     redirect): fix --base-url
//   kUnauthenticated  the key is refused (401/403)
//   kUnavailable      unreachable, or a 5xx: the endpoint is down
// Messages name the URL (without credentials), never the key. `model` ("":
// any) is looked up among the listed ids; a miss is a warning, not an error
// (gateways route names they do not list).
absl::StatusOr<ModelsCheck> JudgeModelsResponse(const HttpResponse& r, const BackendConfig& backend,
                                                const std::string& model);

// Both of the above, blocking.
absl::StatusOr<ModelsCheck> CheckModelsEndpoint(const BackendConfig& backend,
                                                const v1::RequestParams& params,
                                                const std::string& model, absl::Duration timeout);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_ENDPOINT_PROBE_H_
