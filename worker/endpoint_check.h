// `medeval probe`: a handful of real requests that tell, before a long run,
// whether an endpoint can serve it: reachable and OpenAI-compatible, the
// model listed, one real question answered with non-empty content (reasoning
// kept apart), temperature 0 accepted, streaming, latency at 1, 8 and 32
// requests in flight, and the largest max_tokens accepted (16K is what
// MedBench's API mode asks of the endpoints it calls). `medeval run` makes
// the cheap first two checks itself (endpoint_probe.h).
//
// Thread-safe: each call uses its own HTTP client.
#ifndef MEDEVAL_WORKER_ENDPOINT_CHECK_H_
#define MEDEVAL_WORKER_ENDPOINT_CHECK_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/medeval.pb.h"
#include "worker/chat_backend.h"

namespace medeval {

struct EndpointCheckOptions {
  BackendConfig backend;
  std::string model;
  v1::RequestParams params;  // system prompt, extra body and headers of a run
  absl::Duration timeout = absl::Seconds(120);
  std::vector<int> in_flight = {1, 8, 32};
  int max_tokens = 16384;  // the largest tried
};

struct CheckLine {
  std::string check;
  bool pass = false;
  bool needed = false;  // a run needs it: a failure makes the probe fail
  std::string detail;
};

struct EndpointCheckReport {
  std::vector<CheckLine> lines;
  // Every check a run needs passed.
  bool ok() const;
  // The table as printed.
  std::string Table() const;
};

EndpointCheckReport CheckEndpoint(const EndpointCheckOptions& options);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_ENDPOINT_CHECK_H_
