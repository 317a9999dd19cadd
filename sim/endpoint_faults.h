// Misbehaviours of a whole endpoint, not of one answer, as real deployments
// show them: a plain web server where the API should be (HTML 404 on every
// path), a proxy with nothing behind it (502/503 with an HTML page), a key
// revoked in the middle of a run (401 after N answers), and an address that
// redirects elsewhere (3xx with Location). The outage (connection refused for
// a while) lives in SimServer, which owns the listening socket.
//
// Thread-safety: every method may be called from any thread (settings are
// atomics or behind a mutex); the server's I/O threads call Intercept.
#ifndef MEDEVAL_SIM_ENDPOINT_FAULTS_H_
#define MEDEVAL_SIM_ENDPOINT_FAULTS_H_

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace medeval::sim {

struct EndpointFaultOptions {
  bool html_404 = false;            // every API path: 404 text/html, like nginx without the API
  int proxy_status = 0;             // 502 or 503 (HTML) on every API path; 0: off
  int64_t unauthorized_after = -1;  // after this many answers every API request gets 401
  std::string redirect_to;          // every API request: 301 to this URL + its path
};

// A response given instead of serving the request.
struct CannedResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string location;  // for 3xx
};

class EndpointFaults {
 public:
  explicit EndpointFaults(const EndpointFaultOptions& o);

  // What to answer for `path` instead of serving it, given the answers
  // served so far; nullopt: serve it normally.
  std::optional<CannedResponse> Intercept(absl::string_view path, uint64_t answered) const;

  // Applies one POST /control setting: html_404 (0/1), proxy_status (0, 502,
  // 503, 504), unauthorized_after (-1: off), redirect_to (a URL, "" off).
  // Returns false if `key` is not one of these; `error` is set when the value
  // is wrong.
  bool Control(const std::string& key, const nlohmann::json& value, std::string* error);

  // Counts for /stats.
  nlohmann::json Stats() const;
  void ResetStats();

 private:
  std::atomic<bool> html_404_;
  std::atomic<int> proxy_status_;
  std::atomic<int64_t> unauthorized_after_;
  mutable absl::Mutex mu_;
  std::string redirect_to_ ABSL_GUARDED_BY(mu_);
  mutable std::atomic<uint64_t> n_html_404_{0}, n_proxy_{0}, n_unauthorized_{0}, n_redirect_{0};
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_ENDPOINT_FAULTS_H_
