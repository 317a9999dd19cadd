// `medeval sim`: an OpenAI-compatible chat-completions server with known
// behaviour, for demos, tests, load and fault drills.
//
// Serves POST /v1/chat/completions (plain and "stream": true), the Batch API
// (sim/batch_api.h), GET /v1/models and /v1/models/{id}, GET /health and GET /stats on HTTP/1.1
// keep-alive. At most `capacity` requests are served at once (the rest queue or get 429), each
// taking `latency_ms`; faults are injected with the configured probabilities.
//
// Thread-safety: Start/Stop from one thread; StatsJson and port from any.
// Requests are served on the server's own I/O threads.
#ifndef MEDEVAL_SIM_SIM_SERVER_H_
#define MEDEVAL_SIM_SIM_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sim/answer_model.h"
#include "sim/batch_api.h"
#include "sim/response_faults.h"
#include "sim/endpoint_faults.h"

namespace medeval::sim {

struct SimOptions {
  std::string listen = "127.0.0.1:0";      // HOST:PORT; port 0 picks a free one
  int threads = 0;                         // I/O threads; 0: one per core
  double latency_ms = 0;                   // service time of one request
  double jitter_sigma = 0;                 // log-normal jitter of the latency (mean kept)
  int capacity = 0;                        // concurrent requests served; 0: unlimited
  bool overflow_reject = false;            // over capacity: 429 (true) or wait (false)
  double fail_rate = 0;                    // 500
  double ratelimit_rate = 0;               // 429 with Retry-After
  double drop_rate = 0;                    // connection closed without a response
  double garbage_rate = 0;                 // 200 with a malformed body
  double hang_rate = 0;                    // never answered
  int retry_after_s = 1;                   // Retry-After of 429 responses
  std::string api_key;                     // require "Authorization: Bearer KEY"
  std::string model_name = "medeval-sim";  // listed by /v1/models
  AnswerStyle style;
  BatchOptions batch;              // the Batch API (/v1/files, /v1/batches)
  ResponseFaultOptions responses;  // misbehaving 200 answers (non-streaming)
  EndpointFaultOptions endpoint_faults;  // web server, proxy, revoked key, redirect
  // After this many answers the server stops answering (connection refused,
  // open connections reset) for `down_for`, then comes back; -1: never.
  int64_t down_after = -1;
  absl::Duration down_for = absl::Seconds(10);
};

class SimServer {
 public:
  explicit SimServer(SimOptions options);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds and starts serving on background threads.
  absl::Status Start();
  // The bound port (after Start).
  int port() const;
  // Stops accepting, closes every connection (hung ones included), joins.
  void Stop();
  // The /stats document.
  std::string StatsJson() const;
  // Refuses connections (and resets open ones) for `d`, then serves again on
  // the same port, like a model server that was restarted.
  void GoDown(absl::Duration d);
  // Applies a POST /control document; returns what is wrong with it, or "".
  std::string Control(const std::string& json_body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "--overflow" values.
absl::Status ParseOverflow(const std::string& value, bool* reject);

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_SIM_SERVER_H_
