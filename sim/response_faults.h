// Answers that are not answers, and bodies a client must not trust: the
// simulated server's misbehaviours on a 200 response, each with its own
// probability, as real servers and proxies show them. Empty content, white
// space only, reasoning only (content null, the text in reasoning_content),
// a think block only, invalid UTF-8 in the content, a huge body; gzip
// bodies, a Content-Encoding that does not match the body, and a served
// model name other than the one asked for.
//
// Thread-safety: ResponseFaults is thread-safe (rates are atomics that
// POST /control may change while serving); the free functions are pure.
#ifndef MEDEVAL_SIM_RESPONSE_FAULTS_H_
#define MEDEVAL_SIM_RESPONSE_FAULTS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval::sim {

enum class ContentFault {
  kNone,
  kEmpty,          // "content": ""
  kWhitespace,     // spaces, tabs, newlines, U+00A0, U+3000
  kReasoningOnly,  // "content": null, the answer in "reasoning_content"
  kThinkOnly,      // "<think>...</think>" and nothing after it
  kInvalidUtf8,    // bytes that are not UTF-8 before the answer
  kHuge,           // a body of huge_bytes (padding beside the answer)
  kCount,
};

// The /stats and /control name of a fault ("empty", "whitespace", ...).
const char* ContentFaultName(ContentFault f);

struct ResponseFaultOptions {
  // Probability of each ContentFault (index = enum value; kNone unused).
  std::array<double, static_cast<size_t>(ContentFault::kCount)> rates{};
  int64_t huge_bytes = 32 << 20;
  bool gzip = false;         // every JSON answer gzip-compressed
  double bad_gzip_rate = 0;  // "Content-Encoding: gzip" over a body that is not
  std::string served_model;  // the "model" answered; "" = the one asked for
};

class ResponseFaults {
 public:
  explicit ResponseFaults(const ResponseFaultOptions& options);

  // The fault for a request whose draw is `u` in [0, 1).
  ContentFault Pick(double u) const;
  bool BadGzip(double u) const { return u < bad_gzip_rate_.load(); }
  // A rate by its /control name ("<name>_rate", e.g. "empty_rate",
  // "bad_gzip_rate"); false when the name is not one of these.
  bool Set(absl::string_view name, double value);
  void Count(ContentFault f);
  void CountBadGzip() { bad_gzip_.fetch_add(1, std::memory_order_relaxed); }
  nlohmann::json StatsJson() const;
  void Reset();

  const ResponseFaultOptions& options() const { return options_; }

 private:
  const ResponseFaultOptions options_;
  std::array<std::atomic<double>, static_cast<size_t>(ContentFault::kCount)> rates_;
  std::atomic<double> bad_gzip_rate_;
  std::array<std::atomic<uint64_t>, static_cast<size_t>(ContentFault::kCount)> counts_{};
  std::atomic<uint64_t> bad_gzip_{0};
};

// Rewrites a non-streaming response `body` (with its "choices"[0]
// "message") for `fault`; `reasoning` is the model's thinking to show.
void ApplyContentFault(ContentFault fault, const std::string& reasoning, int64_t huge_bytes,
                       nlohmann::json* body);

// The body as sent: `dumped` with the invalid-UTF-8 marker replaced by
// bytes that are not UTF-8 (JSON libraries refuse to write them).
std::string FinishBody(ContentFault fault, std::string dumped);

// gzip (RFC 1952) of `data`.
absl::StatusOr<std::string> Gzip(absl::string_view data);

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_RESPONSE_FAULTS_H_
