// A quick check, before any question is asked, that a model endpoint answers
// and accepts the key: GET <base>/models.
//
// Thread-safe (each call uses its own HTTP client).
#ifndef MEDEVAL_WORKER_ENDPOINT_PROBE_H_
#define MEDEVAL_WORKER_ENDPOINT_PROBE_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "worker/chat_backend.h"

namespace medeval {

// OK for any HTTP answer except 401/403 (not every server lists models);
// kUnavailable when the server cannot be reached, kUnauthenticated when the
// key is refused. Messages name the URL (without credentials), never the key.
// `params` gives the extra headers requests will carry (some gateways
// authenticate with them).
absl::Status ProbeEndpoint(const BackendConfig& backend, const v1::RequestParams& params,
                           absl::Duration timeout);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_ENDPOINT_PROBE_H_
