// An asynchronous HTTP client on libcurl's multi interface: one event-loop
// thread drives every transfer, connections are kept alive and reused, and
// timers run on the same thread (the retry policy schedules attempts on them).
//
// Thread-safety: Send, Cancel, After and CancelTimer may be called from any
// thread. Callbacks run on the loop thread, one at a time; they must not block
// (queueing work elsewhere is fine) and may call back into the client.
#ifndef MEDEVAL_WORKER_HTTP_CLIENT_H_
#define MEDEVAL_WORKER_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace medeval {

struct HttpRequest {
  std::string url;
  std::string method = "POST";  // "POST", "GET" or "DELETE"
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  absl::Duration timeout = absl::Seconds(600);
  // Largest response body accepted, counted after decompression (a small
  // gzip body can expand to gigabytes); 0: no limit. Over it, the transfer
  // stops with too_large set.
  size_t max_response_bytes = 0;
};

struct HttpResponse {
  int status = 0;  // HTTP status; 0 when no response arrived
  std::string body;
  std::string retry_after;       // Retry-After header, raw
  std::string request_id;        // x-request-id header, raw
  std::string content_encoding;  // Content-Encoding header, raw
  std::string location;          // where a 3xx points (absolute), if anywhere
  std::string content_type;      // Content-Type header, if any
  std::string error;             // transport error (curl's words); empty on a response
  bool timed_out = false;
  bool too_large = false;  // the body passed max_response_bytes (error says so)
  int curl_code = 0;
  absl::Duration elapsed;
};

class HttpClient {
 public:
  struct Options {
    // Connections kept per host; requests beyond wait inside libcurl.
    int max_connections = 64;
    absl::Duration connect_timeout = absl::Seconds(10);
  };
  using Callback = std::function<void(HttpResponse)>;

  explicit HttpClient(Options options);
  // Stops the loop; callbacks of unfinished transfers are not called.
  ~HttpClient();
  // Stops the loop now: a callback that is running finishes first, and none
  // runs afterwards (later Send and After are dropped). Lets an owner stop
  // callbacks before the objects they use are destroyed. Idempotent.
  void Stop();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a transfer; `done` runs once with its outcome (unless cancelled).
  uint64_t Send(HttpRequest request, Callback done);
  // Aborts a transfer. One not started yet is dropped at once and its callback
  // never runs. One already running is aborted when the loop next turns: if it
  // completes first (in the same turn, or because Cancel came from another
  // thread), its callback still runs, so callbacks must tolerate an answer to
  // a cancelled request. An unknown or finished id is ignored.
  void Cancel(uint64_t id);
  // Runs `fn` on the loop thread after `delay`.
  uint64_t After(absl::Duration delay, std::function<void()> fn);
  void CancelTimer(uint64_t id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_HTTP_CLIENT_H_
