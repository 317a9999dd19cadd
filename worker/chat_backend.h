// Asks an OpenAI-compatible chat-completions endpoint one question at a
// time (many at once), with the retry policy, and turns the response into an
// AnswerRecord: the submitted answer is the text minus a leading reasoning
// block, and everything else the model said is kept in the record.
//
// The API key stays here: it is sent to the model server only, and scrubbed
// from every error message.
//
// Thread-safety: every method but SetHooks is thread-safe (one mutex guards
// the state). Done callbacks run on the HTTP client's loop thread and must
// not block.
#ifndef MEDEVAL_WORKER_CHAT_BACKEND_H_
#define MEDEVAL_WORKER_CHAT_BACKEND_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/url.h"
#include "proto/medeval.pb.h"
#include "worker/endpoint_health.h"
#include "worker/http_client.h"
#include "worker/retry_policy.h"

namespace medeval {

struct BackendConfig {
  Endpoint endpoint;
  std::string api_key;       // "" for servers without auth
  std::string worker_name;   // recorded with each answer
  std::string served_model;  // model name in requests; "" = the run's model
  // Headers this worker adds to every request (credentials among them, from
  // --header or --header-env): sent to the model server only, never part of
  // the run, and their credential values are scrubbed from every message.
  std::vector<std::pair<std::string, std::string>> headers;
  // Largest response body accepted (after decompression); 0: no limit.
  size_t max_response_bytes = kDefaultMaxResponseBytes;
  absl::Duration retry_base = absl::Seconds(1);
  absl::Duration retry_cap = absl::Seconds(60);
  // Longest Retry-After honoured (a longer one is cut to this).
  absl::Duration max_retry_after = absl::Minutes(10);
  // Consecutive connection resets, 502/503/504 or timeouts (or the same
  // other error) that mean the endpoint is down; see EndpointHealth.
  int down_threshold = 3;
  // While the endpoint is down it is probed after probe_min, doubling up
  // to probe_max.
  absl::Duration probe_min = absl::Seconds(1);
  absl::Duration probe_max = absl::Seconds(30);

  static constexpr size_t kDefaultMaxResponseBytes = 16 << 20;
};

struct AskOutcome {
  enum Kind {
    kAnswered,  // record holds the answer
    kFailed,    // the question failed for good; record says why
    kBackend,   // the backend is unusable (auth, wrong URL); error says why
    kHandBack,  // the endpoint is down (or the backend halted): give the
                // question back, its attempts unspent; error says why
  };
  Kind kind = kAnswered;
  v1::AnswerRecord record;
  std::string error;
};

// A parsed chat-completions response.
struct ChatCompletion {
  bool has_content = false;  // false: content was null or absent
  std::string content;
  std::string reasoning_field;  // reasoning_content or reasoning
  std::string reasoning_key;    // which of the two
  std::string finish_reason;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
  std::string model;  // what the server says it served
  std::string system_fingerprint;
  std::string id;
  // Invalid UTF-8 sequences in the body, each replaced by U+FFFD.
  size_t invalid_utf8 = 0;
};

// Parses a response body; kInvalidArgument says what is wrong with it. A
// body that is JSON apart from invalid UTF-8 is read with U+FFFD in place of
// each bad sequence (and invalid_utf8 counts them).
absl::StatusOr<ChatCompletion> ParseChatCompletion(absl::string_view body);

// Why a parsed response is not an answer ("" when it is one): content null
// or absent, empty, only white space (Unicode spaces included), or only a
// leading <think> block, after `answer` (the content minus that block) is
// taken. Says when the text is only in the reasoning field, since MedBench
// reads `content`.
std::string EmptyAnswerReason(const ChatCompletion& c, absl::string_view answer);

// The request body for one question.
std::string BuildChatRequest(const std::string& model, const v1::RequestParams& params,
                             const v1::Lease& lease);

// The error message of a non-2xx response body (OpenAI's {"error":
// {"message"}} and the common variants), or a prefix of the body.
std::string ServerErrorMessage(absl::string_view body);

// One attempt as metrics see it.
struct AttemptReport {
  // ok, rate_limited (429), server_error (5xx), client_error (other 4xx),
  // timeout, connection, bad_response (a 2xx body that cannot be read, too
  // large, or not matching its Content-Encoding), empty_answer (a 2xx
  // whose content holds no answer)
  const char* outcome = "ok";
  absl::Duration elapsed;  // request sent to response (or to giving up)
  bool retrying = false;   // another attempt follows
  bool answered = false;   // the question is answered (outcome ok)
  bool failed = false;     // the question failed for good
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// What the backend tells its owner. Called without the backend's locks held;
// on_grant_demand may be called with the caller of Ask's locks held, so it
// must not take them.
struct BackendHooks {
  std::function<void()> on_grant_demand;                      // attempts waiting for grants changed
  std::function<void(absl::Duration)> on_rate_limited;        // a 429 with Retry-After
  // Every attempt: answered 429, timed out, or neither.
  std::function<void(bool throttled, bool timed_out)> on_attempt;
  std::function<void(const AttemptReport&)> on_attempt_done;  // every attempt that ended
  // The endpoint is down (why); asks that fail for that reason come back as
  // kHandBack until EndpointUp.
  std::function<void(const std::string& reason)> on_endpoint_down;
};

class ChatBackend {
 public:
  ChatBackend(HttpClient* http, BackendConfig config);
  ~ChatBackend();

  // Set before the first Ask.
  void SetHooks(BackendHooks hooks) { hooks_ = std::move(hooks); }
  // Rate-limited models: every attempt waits for a grant.
  void SetGrantMode(bool on) ABSL_LOCKS_EXCLUDED(mu_);
  void AddGrants(uint32_t n) ABSL_LOCKS_EXCLUDED(mu_);
  struct GrantState {
    uint32_t want = 0;  // attempts waiting beyond the grants at hand
    uint64_t seen = 0;  // grants received in total
  };
  GrantState grant_state() ABSL_LOCKS_EXCLUDED(mu_);

  using Done = std::function<void(AskOutcome)>;
  // Asks `lease`'s question under `run`'s settings; `done` runs exactly once
  // unless the ask is cancelled.
  uint64_t Ask(const v1::RunInfo& run, const v1::Lease& lease, Done done) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the requests already sent for the ask: the server saw them.
  int Cancel(uint64_t ask_id) ABSL_LOCKS_EXCLUDED(mu_);
  // No attempt starts before `until` (a model-wide 429 back-off).
  void PauseUntil(absl::Time until) ABSL_LOCKS_EXCLUDED(mu_);
  // Points later requests at another endpoint (a restarted local server).
  void SetEndpoint(const Endpoint& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // The endpoint answers again (a probe succeeded).
  void EndpointUp() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether ask `ask_id` has a request at the server now (not waiting to
  // retry, for a grant or for a pause).
  bool Sending(uint64_t ask_id) ABSL_LOCKS_EXCLUDED(mu_);
  // No further attempt starts: asks waiting to retry (or for a grant or a
  // pause) end as kHandBack when their turn comes; requests in flight finish.
  void Halt() ABSL_LOCKS_EXCLUDED(mu_);

  // The endpoint as it may be shown and recorded (no credentials).
  std::string public_endpoint() ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t attempts = 0;
    uint64_t retries = 0;
    uint64_t answered = 0;
    uint64_t failed = 0;
  };
  Stats stats() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct AskState;
  void StartAttempt(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void NotifyGrantDemand() ABSL_LOCKS_EXCLUDED(mu_);
  void OnResponse(uint64_t id, HttpResponse resp) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends ask `id` as kHandBack with `why`; returns its callback.
  Done HandBackLocked(uint64_t id, const std::string& why, AskOutcome* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Scrub(std::string message) const;

  HttpClient* const http_;
  const BackendConfig config_;
  BackendHooks hooks_;

  absl::Mutex mu_;
  Endpoint endpoint_ ABSL_GUARDED_BY(mu_);
  std::string public_endpoint_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::unique_ptr<AskState>> asks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Time paused_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  bool grant_mode_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t grants_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t grants_seen_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<uint64_t> waiting_for_grant_ ABSL_GUARDED_BY(mu_);
  EndpointHealth health_ ABSL_GUARDED_BY(mu_);
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  bool halted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_CHAT_BACKEND_H_
