// Tells "the endpoint is down" from "this question failed", from the
// attempts a backend makes: connection refused, DNS or TLS failures trip it
// at once; connection resets, 502/503/504 and timeouts (every request in
// flight timing out) trip it after a run of them with nothing else in
// between; any other non-question error trips it when the same error comes
// back on twice that many consecutive requests of more than one question (one
// question that always fails is that question's problem). Anything that shows the server
// working (an answer, a 4xx about the question, a 429) ends the run.
//
// Only question failures spend a question's attempts: while the endpoint is
// down the worker hands its questions back and probes until it answers.
//
// Thread-safety: EndpointHealth is not thread-safe (the backend calls it
// under its own mutex); the free functions are pure.
#ifndef MEDEVAL_WORKER_ENDPOINT_HEALTH_H_
#define MEDEVAL_WORKER_ENDPOINT_HEALTH_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "worker/http_client.h"

namespace medeval {

enum class DownSignal {
  kNone,        // the server answered: it works (whatever it said about the question)
  kDefinitive,  // nothing listens there: refused, DNS, TLS handshake
  kSuspect,     // reset, 502/503/504, timeout: down if it keeps happening
  kRepeated,    // another transient error: down if the same one keeps coming
};

// How an attempt's response bears on the endpoint's health. `usable_answer`:
// a 2xx carried an answer.
DownSignal ClassifyDownSignal(const HttpResponse& r, bool usable_answer);

class EndpointHealth {
 public:
  // `threshold`: consecutive suspect (or identical repeated) failures that
  // mean the endpoint is down.
  explicit EndpointHealth(int threshold) : threshold_(threshold < 1 ? 1 : threshold) {}

  // Records an ended attempt of question `ask`; returns true when it shows
  // the endpoint down (`error` is the attempt's error text).
  bool Record(DownSignal signal, uint64_t ask, const std::string& error, absl::Time now);
  // When the server last showed it works (InfinitePast: never).
  absl::Time last_alive() const { return last_alive_; }
  // The endpoint answers again: start counting afresh.
  void Reset();

 private:
  const int threshold_;
  int streak_ = 0;
  std::string last_error_;
  uint64_t streak_ask_ = 0;     // the question that started the streak
  bool streak_others_ = false;  // the streak holds other questions too
  absl::Time last_alive_ = absl::InfinitePast();
};

// What a response that shows the endpoint down says, briefly: curl's words
// for a transport error, "HTTP 502: <title or first line>" for a status.
std::string DescribeDown(const HttpResponse& r);

// The first line of a response body worth showing: for an HTML page its
// <title>, otherwise its first non-blank line, cut to `max` characters.
std::string FirstLineOfBody(const std::string& body, size_t max = 120);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_ENDPOINT_HEALTH_H_
