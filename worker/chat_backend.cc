#include "worker/chat_backend.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http_headers.h"
#include "common/reasoning.h"
#include "common/utf8.h"
#include "worker/answer_record.h"

namespace medeval {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxErrorBody = 300;
constexpr int kCurlBadContentEncoding = 61;  // CURLE_BAD_CONTENT_ENCODING

// A transport failure in words that say what was wrong: a body over the
// size limit or one that does not decode as its Content-Encoding says is not
// a "connection error".
std::string TransportErrorMessage(const HttpResponse& resp) {
  if (resp.too_large) {
    return absl::StrCat("response too large: ", resp.error,
                        " (--max-response-bytes; a chat answer is rarely over 1 MiB)");
  }
  if (resp.curl_code == kCurlBadContentEncoding) {
    return absl::StrCat("the response body does not decode as its Content-Encoding '",
                        resp.content_encoding, "' says (", resp.error, ")");
  }
  return absl::StrCat("connection error: ", resp.error);
}

// Text of a message "content" that is a string or a list of parts.
bool ContentText(const json& content, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return true;
  }
  if (content.is_array()) {
    out->clear();
    for (const json& part : content) {
      if (part.is_object() && part.contains("text") && part["text"].is_string()) {
        out->append(part["text"].get<std::string>());
      }
    }
    return true;
  }
  return false;
}

std::string StringOr(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t IntOr(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

struct ChatBackend::AskState {
  Done done;
  HttpRequest request;
  int max_attempts = 6;
  int attempt = 0;
  uint64_t http_id = 0;
  uint64_t timer_id = 0;
  absl::Time first_start = absl::InfinitePast();
  std::string last_error;
  std::string requested_model;
  bool down_grace_used = false;  // one try beyond max_attempts on a connection failure
};

absl::StatusOr<ChatCompletion> ParseChatCompletion(absl::string_view body) {
  size_t invalid_utf8 = 0;
  std::string repaired;
  if (!IsValidUtf8(body)) {
    // JSON must be UTF-8, but a server that cuts a character in half (or
    // sends GBK) still said something: keep it, marked, rather than lose
    // every attempt to "not JSON".
    repaired = ReplaceInvalidUtf8(body, &invalid_utf8);
    body = repaired;
  }
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "response body is not JSON: '", Utf8Prefix(body, 80), body.size() > 80 ? "...'" : "'"));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("response body is not a JSON object");
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty() ||
      !(*choices)[0].is_object()) {
    return absl::InvalidArgumentError("response has no choices");
  }
  const json& choice = (*choices)[0];
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) {
    return absl::InvalidArgumentError("response choice has no message");
  }
  ChatCompletion c;
  c.invalid_utf8 = invalid_utf8;
  c.model = StringOr(j, "model");
  c.system_fingerprint = StringOr(j, "system_fingerprint");
  c.id = StringOr(j, "id");
  auto content = message->find("content");
  if (content != message->end() && !content->is_null()) {
    if (!ContentText(*content, &c.content)) {
      return absl::InvalidArgumentError("message content is neither text nor a list of parts");
    }
    c.has_content = true;
  }
  for (const char* key : {"reasoning_content", "reasoning"}) {
    auto r = message->find(key);
    if (r != message->end() && r->is_string() && !r->get_ref<const std::string&>().empty()) {
      c.reasoning_field = r->get<std::string>();
      c.reasoning_key = key;
      break;
    }
  }
  auto finish = choice.find("finish_reason");
  if (finish != choice.end() && finish->is_string()) c.finish_reason = finish->get<std::string>();
  auto usage = j.find("usage");
  if (usage != j.end() && usage->is_object()) {
    c.prompt_tokens = IntOr(*usage, "prompt_tokens");
    c.completion_tokens = IntOr(*usage, "completion_tokens");
    c.total_tokens = IntOr(*usage, "total_tokens");
  }
  return c;
}

std::string EmptyAnswerReason(const ChatCompletion& c, absl::string_view answer) {
  std::string why;
  if (!c.has_content) {
    why = "the message content is null";
  } else if (!IsBlankText(answer)) {
    return "";
  } else if (c.content.empty()) {
    why = "the message content is empty";
  } else if (IsBlankText(c.content)) {
    why = absl::StrCat("the message content is only white space (", c.content.size(), " bytes)");
  } else {
    why = "the message content is only a <think> block, with nothing after it";
  }
  if (!c.reasoning_field.empty()) {
    absl::StrAppend(&why, "; the text is only in the '", c.reasoning_key, "' field (",
                    Utf8Length(c.reasoning_field),
                    " characters), which MedBench does not read: it reads 'content'");
  }
  return absl::StrCat("empty answer: ", why);
}

std::string BuildChatRequest(const std::string& model, const v1::RequestParams& params,
                             const v1::Lease& lease) {
  json messages = json::array();
  if (params.has_system_prompt() && !params.system_prompt().empty()) {
    messages.push_back({{"role", "system"}, {"content", params.system_prompt()}});
  }
  if (lease.images_size() == 0) {
    messages.push_back({{"role", "user"}, {"content", lease.question()}});
  } else {
    // OpenAI vision format: the question, then each image in img_path order.
    json parts = json::array({{{"type", "text"}, {"text", lease.question()}}});
    for (const v1::ImagePart& img : lease.images()) {
      parts.push_back({{"type", "image_url"},
                       {"image_url",
                        {{"url", absl::StrCat("data:", img.mime_type(), ";base64,",
                                              absl::Base64Escape(img.data()))}}}});
    }
    messages.push_back({{"role", "user"}, {"content", std::move(parts)}});
  }
  json body = {{"model", model}, {"messages", std::move(messages)}};
  if (params.has_temperature()) body["temperature"] = params.temperature();
  if (params.has_max_tokens()) body["max_tokens"] = params.max_tokens();
  if (params.has_top_p()) body["top_p"] = params.top_p();
  if (!params.extra_body_json().empty()) {
    json extra = json::parse(params.extra_body_json(), nullptr, false);
    if (extra.is_object()) body.update(extra);
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ServerErrorMessage(absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object()) {
    auto err = j.find("error");
    if (err != j.end()) {
      if (err->is_string()) return err->get<std::string>();
      if (err->is_object() && err->contains("message") && (*err)["message"].is_string()) {
        return (*err)["message"].get<std::string>();
      }
    }
    for (const char* key : {"message", "detail"}) {
      if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    }
  }
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(body);
  if (absl::StartsWithIgnoreCase(trimmed, "<!doctype") ||
      absl::StartsWithIgnoreCase(trimmed, "<html") ||
      absl::StartsWithIgnoreCase(trimmed, "<head") ||
      absl::StartsWithIgnoreCase(trimmed, "<body")) {
    // A proxy's or gateway's HTML page: its title, or its first line of text.
    std::string text;
    const std::string lower = absl::AsciiStrToLower(trimmed);
    size_t t = lower.find("<title>");
    size_t te = t == std::string::npos ? std::string::npos : lower.find("</title>", t);
    absl::string_view src = te != std::string::npos ? trimmed.substr(t + 7, te - t - 7) : trimmed;
    bool in_tag = false;
    for (char c : src) {
      if (c == '<') in_tag = true;
      if (!in_tag) text += c;
      if (c == '>') {
        in_tag = false;
        text += '\n';
      }
    }
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (!line.empty()) {
        return absl::StrCat("HTML page: ", Utf8Prefix(line, kMaxErrorBody));
      }
    }
    return "an HTML page";
  }
  std::string s(Utf8Prefix(body, kMaxErrorBody));
  if (body.size() > kMaxErrorBody) s += "...";
  return s;
}

ChatBackend::ChatBackend(HttpClient* http, BackendConfig config)
    : http_(http),
      config_(std::move(config)),
      endpoint_(config_.endpoint),
      public_endpoint_(RedactUrl(config_.endpoint.base)),
      health_(config_.down_threshold) {}

void ChatBackend::EndpointUp() {
  absl::MutexLock lock(&mu_);
  down_ = false;
  health_.Reset();
}

bool ChatBackend::Sending(uint64_t ask_id) {
  absl::MutexLock lock(&mu_);
  auto it = asks_.find(ask_id);
  return it != asks_.end() && it->second->http_id != 0;
}

void ChatBackend::Halt() {
  absl::MutexLock lock(&mu_);
  halted_ = true;
}

ChatBackend::Done ChatBackend::HandBackLocked(uint64_t id, const std::string& why,
                                              AskOutcome* out) {
  auto it = asks_.find(id);
  if (it == asks_.end()) return nullptr;
  Done done = std::move(it->second->done);
  asks_.erase(it);
  out->kind = AskOutcome::kHandBack;
  out->error = why;
  return done;
}

void ChatBackend::SetEndpoint(const Endpoint& endpoint) {
  absl::MutexLock lock(&mu_);
  endpoint_ = endpoint;
  public_endpoint_ = RedactUrl(endpoint.base);
}

std::string ChatBackend::public_endpoint() {
  absl::MutexLock lock(&mu_);
  return public_endpoint_;
}

ChatBackend::~ChatBackend() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, st] : asks_) {
    if (st->http_id) http_->Cancel(st->http_id);
    if (st->timer_id) http_->CancelTimer(st->timer_id);
  }
}

std::string ChatBackend::Scrub(std::string message) const {
  return ScrubCredentials(std::move(message), config_.api_key, config_.headers);
}

uint64_t ChatBackend::Ask(const v1::RunInfo& run, const v1::Lease& lease, Done done) {
  for (const v1::ImagePart& img : lease.images()) {
    if (!img.data().empty()) continue;
    // A question is never sent without its images: refused, not asked.
    AskOutcome out;
    out.kind = AskOutcome::kFailed;
    out.record.set_worker(config_.worker_name);
    out.record.set_last_error(absl::StrCat("the lease carries no bytes for image ", img.path(),
                                           "; the question was not sent without it"));
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      id = next_id_++;
    }
    http_->After(absl::ZeroDuration(), [done = std::move(done), out = std::move(out)]() mutable {
      done(std::move(out));
    });
    return id;
  }
  auto st = std::make_unique<AskState>();
  st->done = std::move(done);
  const std::string& model = config_.served_model.empty() ? run.model() : config_.served_model;
  {
    absl::MutexLock lock(&mu_);
    st->request.url = endpoint_.chat_completions;
  }
  st->request.body = BuildChatRequest(model, run.params(), lease);
  st->request.headers.push_back("Content-Type: application/json");
  if (!config_.api_key.empty()) {
    st->request.headers.push_back(absl::StrCat("Authorization: Bearer ", config_.api_key));
  }
  for (const auto& [k, v] : run.params().extra_headers()) {
    st->request.headers.push_back(absl::StrCat(k, ": ", v));
  }
  for (const auto& [k, v] : config_.headers)
    st->request.headers.push_back(absl::StrCat(k, ": ", v));
  st->request.max_response_bytes = config_.max_response_bytes;
  st->requested_model = model;
  const double timeout_s = run.params().timeout_s() > 0 ? run.params().timeout_s() : 600;
  st->request.timeout = absl::Seconds(timeout_s);
  st->max_attempts = run.params().max_attempts() > 0 ? run.params().max_attempts() : 6;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    asks_[id] = std::move(st);
  }
  StartAttempt(id);
  return id;
}

void ChatBackend::SetGrantMode(bool on) {
  absl::MutexLock lock(&mu_);
  grant_mode_ = on;
}

void ChatBackend::AddGrants(uint32_t n) {
  std::vector<uint64_t> start;
  {
    absl::MutexLock lock(&mu_);
    grants_ += n;
    grants_seen_ += n;
    while (start.size() < grants_ && !waiting_for_grant_.empty()) {
      start.push_back(waiting_for_grant_.front());
      waiting_for_grant_.pop_front();
    }
  }
  for (uint64_t id : start) StartAttempt(id);
  NotifyGrantDemand();
}

ChatBackend::GrantState ChatBackend::grant_state() {
  absl::MutexLock lock(&mu_);
  GrantState g;
  g.want = waiting_for_grant_.size() > grants_
               ? static_cast<uint32_t>(waiting_for_grant_.size() - grants_)
               : 0;
  g.seen = grants_seen_;
  return g;
}

void ChatBackend::NotifyGrantDemand() {
  if (hooks_.on_grant_demand) hooks_.on_grant_demand();
}

int ChatBackend::Cancel(uint64_t ask_id) {
  absl::MutexLock lock(&mu_);
  auto it = asks_.find(ask_id);
  if (it == asks_.end()) return 0;
  const int sent = it->second->attempt;
  auto w = std::find(waiting_for_grant_.begin(), waiting_for_grant_.end(), ask_id);
  if (w != waiting_for_grant_.end()) waiting_for_grant_.erase(w);
  if (it->second->http_id) http_->Cancel(it->second->http_id);
  if (it->second->timer_id) http_->CancelTimer(it->second->timer_id);
  asks_.erase(it);
  return sent;
}

void ChatBackend::PauseUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  paused_until_ = std::max(paused_until_, until);
}

ChatBackend::Stats ChatBackend::stats() {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void ChatBackend::StartAttempt(uint64_t id) {
  HttpRequest request;
  bool wait_for_grant = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = asks_.find(id);
    if (it == asks_.end()) return;  // cancelled
    AskState& st = *it->second;
    st.timer_id = 0;
    const absl::Time now = absl::Now();
    if (halted_) {
      // Not from here: StartAttempt may run under the caller of Ask's locks.
      st.timer_id = http_->After(absl::ZeroDuration(), [this, id] {
        AskOutcome out;
        Done done;
        {
          absl::MutexLock lock(&mu_);
          done = HandBackLocked(id, "the backend stopped", &out);
        }
        if (done) done(std::move(out));
      });
      return;
    }
    if (now < paused_until_) {
      st.timer_id = http_->After(paused_until_ - now, [this, id] { StartAttempt(id); });
      return;
    }
    if (grant_mode_ && grants_ == 0) {
      waiting_for_grant_.push_back(id);
      wait_for_grant = true;
    } else {
      if (grant_mode_) --grants_;
      ++st.attempt;
      ++stats_.attempts;
      if (st.attempt > 1) ++stats_.retries;
      if (st.attempt == 1) st.first_start = now;
      request = st.request;
    }
  }
  if (wait_for_grant) {
    NotifyGrantDemand();
    return;
  }
  uint64_t http_id =
      http_->Send(std::move(request), [this, id](HttpResponse r) { OnResponse(id, std::move(r)); });
  absl::MutexLock lock(&mu_);
  auto it = asks_.find(id);
  if (it != asks_.end()) {
    it->second->http_id = http_id;
  } else {
    http_->Cancel(http_id);  // cancelled while we were sending
  }
}

void ChatBackend::OnResponse(uint64_t id, HttpResponse resp) {
  AskOutcome out;
  Done done;
  std::optional<absl::Duration> pause;
  std::string down_reason;  // the endpoint was found down just now
  AttemptReport report;
  report.elapsed = resp.elapsed;
  const bool throttled = resp.status == 429;
  if (hooks_.on_attempt && (resp.status > 0 || !resp.error.empty())) {
    hooks_.on_attempt(throttled, resp.timed_out);
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = asks_.find(id);
    if (it == asks_.end()) return;
    AskState& st = *it->second;
    st.http_id = 0;
    const absl::Time now = absl::Now();
    FailureKind kind = FailureKind::kTransient;
    std::optional<absl::Duration> retry_after;
    std::string error;
    std::optional<ReasoningSplit> split;
    std::string empty_why;
    absl::StatusOr<ChatCompletion> parsed = absl::UnknownError("no 2xx response");
    if (resp.status >= 200 && resp.status < 300 && resp.error.empty()) {
      parsed = ParseChatCompletion(resp.body);
      if (parsed.ok()) {
        split = SplitReasoning(parsed->content);
        empty_why = EmptyAnswerReason(*parsed, split->answer);
      }
    }
    if (!resp.error.empty()) {
      report.outcome = resp.timed_out ? "timeout" : "connection";
      kind = ClassifyTransportError(resp.curl_code);
      error = resp.timed_out ? absl::StrCat("no response within ",
                                            absl::FormatDuration(st.request.timeout), " (timeout)")
                             : TransportErrorMessage(resp);
      if (resp.too_large || resp.curl_code == kCurlBadContentEncoding) {
        report.outcome = "bad_response";
      }
    } else if (resp.status >= 200 && resp.status < 300) {
      report.outcome = "bad_response";
      if (!parsed.ok()) {
        error = absl::StrCat("HTTP ", resp.status,
                             " with an unusable body: ", parsed.status().message());
      } else if (!empty_why.empty()) {
        // Not an answer: another attempt may give one, and a question that
        // stays empty fails, so a rerun asks it again.
        report.outcome = "empty_answer";
        error = empty_why;
        if (parsed->finish_reason == "length") {
          // The same request stops at the same place again.
          kind = FailureKind::kQuestion;
          absl::StrAppend(&error,
                          " (finish_reason length: max_tokens ran out before the answer; "
                          "raise or unset --max-tokens)");
        }
      } else {
        // An answer.
        v1::AnswerRecord& r = out.record;
        auto answer = AnswerFromCompletion(*parsed);  // not empty: checked above
        if (answer.ok()) r = std::move(*answer);
        r.set_request_id(!resp.request_id.empty() ? resp.request_id : parsed->id);
        r.set_requested_model(st.requested_model);
        r.set_latency_s(absl::ToDoubleSeconds(resp.elapsed));
        r.set_attempts(st.attempt);
        r.set_worker(config_.worker_name);
        r.set_endpoint(public_endpoint_);
        r.set_started_unix_ms(absl::ToUnixMillis(st.first_start));
        r.set_finished_unix_ms(absl::ToUnixMillis(now));
        r.set_last_error(st.last_error);
        out.kind = AskOutcome::kAnswered;
        report.outcome = "ok";
        report.answered = true;
        report.prompt_tokens = parsed->prompt_tokens;
        report.completion_tokens = parsed->completion_tokens;
        ++stats_.answered;
        health_.Record(DownSignal::kNone, id, "", now);
        done = std::move(st.done);
        asks_.erase(it);
      }
    } else {
      kind = ClassifyHttpStatus(resp.status);
      report.outcome = resp.status == 429   ? "rate_limited"
                       : resp.status >= 500 ? "server_error"
                                            : "client_error";
      error = absl::StrCat("HTTP ", resp.status, ": ", ServerErrorMessage(resp.body));
      retry_after = ParseRetryAfter(resp.retry_after, now);
      if (retry_after.has_value()) retry_after = std::min(*retry_after, config_.max_retry_after);
      if (resp.status == 429 && retry_after.has_value() && *retry_after > absl::ZeroDuration()) {
        // The server asks everyone to slow down, not just this request.
        paused_until_ = std::max(paused_until_, now + *retry_after);
        pause = *retry_after;
      }
      if (resp.status == 404) {
        error += absl::StrCat(" (POST ", RedactUrl(st.request.url),
                              "; is the base URL right, e.g. ending in /v1, and is the model "
                              "name one the server serves?)");
      }
    }
    if (!done) {
      error = Scrub(std::move(error));
      st.last_error = error;
      bool retrying = false;
      // Is the endpoint down, rather than this question failing?
      const DownSignal signal =
          kind == FailureKind::kTransient ? ClassifyDownSignal(resp, false) : DownSignal::kNone;
      bool tripped = kind != FailureKind::kBackend && health_.Record(signal, id, error, now);
      RetryPolicy policy(
          {st.max_attempts, config_.retry_base, config_.retry_cap, config_.max_retry_after});
      auto delay = policy.NextDelay(st.attempt, kind, retry_after, absl::Uniform(rng_, 0.0, 1.0));
      if (!delay.has_value() && !tripped &&
          (signal == DownSignal::kSuspect || signal == DownSignal::kDefinitive)) {
        if (health_.last_alive() < st.first_start) {
          // Out of attempts, and nothing has answered since this question was
          // first sent: that is the endpoint, not the question.
          tripped = true;
        } else if (!st.down_grace_used) {
          // The first failures of an outage arrive before it is recognised:
          // one more try tells (it trips the endpoint down, or fails again).
          st.down_grace_used = true;
          delay = config_.retry_base;
        }
      }
      if (tripped && !down_) {
        down_ = true;
        down_reason = Scrub(DescribeDown(resp));
      }
      if (kind == FailureKind::kBackend) {
        out.kind = AskOutcome::kBackend;
        out.error = error;
      } else if (signal != DownSignal::kNone && (down_ || halted_)) {
        out.kind = AskOutcome::kHandBack;
        out.error = error;
      } else {
        if (delay.has_value()) {
          st.timer_id = http_->After(*delay, [this, id] { StartAttempt(id); });
          retrying = true;
          report.retrying = true;
        } else {
          report.failed = true;
          out.kind = AskOutcome::kFailed;
          v1::AnswerRecord& r = out.record;
          r.set_attempts(st.attempt);
          r.set_worker(config_.worker_name);
          r.set_endpoint(public_endpoint_);
          r.set_started_unix_ms(absl::ToUnixMillis(st.first_start));
          r.set_finished_unix_ms(absl::ToUnixMillis(now));
          r.set_last_error(kind == FailureKind::kTransient
                               ? absl::StrCat(error, " (gave up after ", st.attempt, " attempts)")
                               : error);
          ++stats_.failed;
        }
      }
      if (!retrying) {
        done = std::move(st.done);
        asks_.erase(it);
      }
    }
  }
  if (pause.has_value() && hooks_.on_rate_limited) hooks_.on_rate_limited(*pause);
  if (!down_reason.empty() && hooks_.on_endpoint_down) hooks_.on_endpoint_down(down_reason);
  if (hooks_.on_attempt_done) hooks_.on_attempt_done(report);
  if (done) done(std::move(out));
}

}  // namespace medeval
