// One HTTP/1.1 keep-alive connection of the simulator: reads requests,
// routes them (chat completions, the Batch API, models, health, stats,
// control) and writes the answers, faults included.
#include <fcntl.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/stable_hash.h"
#include "common/utf8.h"
#include "sim/capacity_gate.h"
#include "sim/chat_request.h"
#include "sim/completion.h"
#include "sim/engine_driver.h"
#include "sim/rate_limiter.h"
#include "sim/sim_server_impl.h"

namespace medeval::sim {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;
using Response = http::response<http::string_body>;

constexpr size_t kBodyLimit = 256 << 20;  // VLM requests carry images
constexpr auto kIdleTimeout = std::chrono::minutes(5);
constexpr char kSystemFingerprint[] = "fp_medeval_sim";

json ErrorBody(absl::string_view message, absl::string_view type, absl::string_view code) {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}};
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

}  // namespace

class SimServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl* server)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server) {}

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A client that sends "Expect: 100-continue" (curl does above 1 MiB) waits
  // for this interim answer before the body, as real servers give it.
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    auto expect = parser_->get().find(http::field::expect);
    if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue")) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue, sizeof(kContinue) - 1),
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->OnRead(ec);
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        keep_alive_ = false;
        version_ = 11;
        return SendError(http::status::payload_too_large, "request too large",
                         "invalid_request_error", "");
      }
      return;  // reset, timeout or garbage: drop the connection
    }
    stream_.expires_never();
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    Route(req);
  }

  void Route(http::request<http::string_body>& req) {
    absl::string_view target(req.target().data(), req.target().size());
    absl::string_view path = target.substr(0, target.find('?'));
    const bool get = req.method() == http::verb::get;
    const bool post = req.method() == http::verb::post;
    if (server_->Down()) return Drop();
    if (path != "/stats" && path != "/stats/reset" && path != "/control") {
      if (auto canned = server_->faults.Intercept(path, server_->completed.load())) {
        return SendCanned(*canned);
      }
    }
    if (path == "/v1/chat/completions" || path == "/chat/completions") {
      if (!post)
        return SendError(http::status::method_not_allowed, "use POST", "invalid_request_error", "");
      return Chat(req);
    }
    if (absl::StartsWith(path, "/v1/files") || absl::StartsWith(path, "/v1/batches")) {
      if (!Authorized(req)) return SendUnauthorized();
      auto ct = req[http::field::content_type];
      auto r = server_->batches.Handle(
          absl::string_view(req.method_string().data(), req.method_string().size()), path,
          target.size() > path.size() ? target.substr(path.size() + 1) : absl::string_view(),
          absl::string_view(ct.data(), ct.size()), req.body());
      if (r) return SendText(static_cast<http::status>(r->status), r->content_type, r->body);
    }
    if (path == "/health" && get)
      return SendText(http::status::ok, "application/json", "{\"status\":\"ok\"}");
    if ((path == "/v1/models" || path == "/models") && get) {
      if (!Authorized(req)) return SendUnauthorized();
      json models = {{"object", "list"},
                     {"data", json::array({{{"id", server_->opt.model_name},
                                            {"object", "model"},
                                            {"created", absl::ToUnixSeconds(absl::Now())},
                                            {"owned_by", "medeval-sim"}}})}};
      return SendText(http::status::ok, "application/json", models.dump());
    }
    if ((absl::StartsWith(path, "/v1/models/") || absl::StartsWith(path, "/models/")) && get) {
      if (!Authorized(req)) return SendUnauthorized();
      return Model(std::string(path.substr(path.find("/models/") + 8)));
    }
    if (path == "/stats" && get) {
      return SendText(http::status::ok, "application/json", server_->Stats().dump());
    }
    if (path == "/control" && post) {
      std::string err = server_->Control(req.body());
      if (!err.empty())
        return SendError(http::status::bad_request, err, "invalid_request_error", "");
      return SendText(http::status::ok, "application/json", "{\"ok\":true}");
    }
    if (path == "/stats/reset" && post) {
      server_->Reset();
      return SendText(http::status::ok, "application/json", "{\"reset\":true}");
    }
    SendError(http::status::not_found,
              absl::StrCat("no route for ", req.method_string().to_string(), " ", path),
              "invalid_request_error", "not_found");
  }

  // GET /v1/models/{id}, as OpenAI and vLLM answer it.
  void Model(const std::string& id) {
    if (id != server_->opt.model_name) {
      return SendError(http::status::not_found, absl::StrCat("The model '", id, "' does not exist"),
                       "invalid_request_error", "model_not_found");
    }
    json model = {{"id", id},
                  {"object", "model"},
                  {"created", absl::ToUnixSeconds(absl::Now())},
                  {"owned_by", "medeval-sim"}};
    SendText(http::status::ok, "application/json", model.dump());
  }

  void Chat(http::request<http::string_body>& req) {
    Impl& s = *server_;
    s.requests.fetch_add(1, std::memory_order_relaxed);
    if (!Authorized(req)) return SendUnauthorized();
    absl::StatusOr<ChatRequest> parsed = ParseChatRequest(req.body());
    if (!parsed.ok()) {
      s.bad_requests.fetch_add(1, std::memory_order_relaxed);
      return SendError(http::status::bad_request, std::string(parsed.status().message()),
                       "invalid_request_error", "");
    }
    chat_ = std::move(*parsed);
    s.CountQuestion(chat_.question, chat_.images_ok);
    s.images_ok.fetch_add(chat_.images_ok, std::memory_order_relaxed);
    s.images_bad.fetch_add(chat_.images_bad, std::memory_order_relaxed);

    absl::Duration wait;
    if (!s.rate_limiter.Admit(absl::Now(), &wait)) {
      return SendRateLimited(absl::StrCat("Rate limit reached for requests (simulated: ",
                                          s.rate_limiter.rps(), " per second)."),
                             wait);
    }
    const uint64_t n = s.counter.fetch_add(1, std::memory_order_relaxed);
    request_no_ = n;
    double u = s.Draw(n, "fault");
    const SimOptions& o = s.opt;
    garbage_ = false;
    if ((u -= s.ratelimit_rate.load()) < 0) {
      s.f_ratelimit.fetch_add(1, std::memory_order_relaxed);
      return SendRateLimited("Rate limit reached (simulated). Retry after the given time.");
    }
    if ((u -= s.drop_rate.load()) < 0) {
      s.f_drop.fetch_add(1, std::memory_order_relaxed);
      return Drop();
    }
    if ((u -= s.hang_rate.load()) < 0) {
      s.f_hang.fetch_add(1, std::memory_order_relaxed);
      return Hang();
    }
    if ((u -= s.fail_rate.load()) < 0) {
      s.f_server_error.fetch_add(1, std::memory_order_relaxed);
      return SendError(http::status::internal_server_error, "simulated server error",
                       "server_error", "");
    }
    if ((u -= s.garbage_rate.load()) < 0) garbage_ = true;

    if (o.overflow_reject) {
      if (!s.gate.TryAcquire()) {
        s.f_capacity.fetch_add(1, std::memory_order_relaxed);
        return SendRateLimited("Server at capacity (simulated); retry later.");
      }
      return StartService();
    }
    auto self = shared_from_this();
    if (s.gate.Acquire([self] {
          net::post(self->stream_.get_executor(), [self] { self->StartService(); });
        })) {
      StartService();
    }
  }

  void StartService() {
    server_->EnterService();
    if (server_->opt.batching_engine) return Generate();
    double ms = server_->LatencyMs(request_no_);
    if (ms <= 0) return Respond();
    timer_.expires_after(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        self->server_->LeaveService();
        return;
      }
      self->Respond();
    });
  }

  // The engine generates the answer: its length decides how long it takes.
  void Generate() {
    Impl& s = *server_;
    completion_ = Complete(chat_, s.opt.style);
    auto self = shared_from_this();
    absl::Status st = s.engine.Submit(
        completion_->prompt_tokens, completion_->completion_tokens,
        [self] { net::post(self->stream_.get_executor(), [self] { self->Respond(); }); });
    if (!st.ok()) {
      s.LeaveService();
      s.bad_requests.fetch_add(1, std::memory_order_relaxed);
      SendError(http::status::bad_request, st.message(), "invalid_request_error",
                "context_length_exceeded");
    }
  }

  void Respond() {
    Impl& s = *server_;
    s.LeaveService();
    if (s.Down()) return Drop();  // the server "died" while computing this answer
    if (garbage_) {
      s.f_garbage.fetch_add(1, std::memory_order_relaxed);
      return SendText(
          http::status::ok, "application/json",
          "{\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
          "\"message\":{\"role\":\"assistant\",\"content\":\"trunc");
    }
    SimCompletion a = completion_ ? *std::move(completion_) : Complete(chat_, s.opt.style);
    completion_.reset();
    const std::string& finish = a.finish_reason;
    json usage = UsageJson(a);
    s.prompt_tokens.fetch_add(static_cast<uint64_t>(a.prompt_tokens), std::memory_order_relaxed);
    s.completion_tokens.fetch_add(static_cast<uint64_t>(a.completion_tokens),
                                  std::memory_order_relaxed);
    const std::string id = absl::StrCat("chatcmpl-sim-", request_no_);
    const int64_t created = absl::ToUnixSeconds(absl::Now());
    s.CountCompleted();
    s.CountAnswered(chat_.question);
    const std::string& served =
        s.opt.responses.served_model.empty() ? chat_.model : s.opt.responses.served_model;
    if (!chat_.stream) {
      json body = CompletionBody(a, id, served, created);
      body["system_fingerprint"] = kSystemFingerprint;
      const ContentFault fault = s.response_faults.Pick(s.Draw(request_no_, "content"));
      if (fault != ContentFault::kNone) {
        ApplyContentFault(fault, a.reasoning_content, s.opt.responses.huge_bytes, &body);
        s.response_faults.Count(fault);
      }
      return SendAnswer(FinishBody(fault, body.dump()));
    }
    // Server-sent events: role, reasoning and content deltas, finish, usage, [DONE].
    std::string sse;
    auto chunk = [&](json delta, json finish_reason) {
      json c = {{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", served},
                {"choices", json::array({{{"index", 0},
                                          {"delta", std::move(delta)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", std::move(finish_reason)}}})}};
      absl::StrAppend(&sse, "data: ", c.dump(), "\n\n");
    };
    auto pieces = [](const std::string& text) {
      std::vector<std::string> out;
      size_t i = 0;
      while (i < text.size()) {
        size_t take = Utf8Prefix(absl::string_view(text).substr(i), 24).size();
        if (take == 0) take = text.size() - i;
        out.push_back(text.substr(i, take));
        i += take;
      }
      return out;
    };
    chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
    for (const auto& p : pieces(a.reasoning_content)) chunk({{"reasoning_content", p}}, nullptr);
    for (const auto& p : pieces(a.content)) chunk({{"content", p}}, nullptr);
    chunk(json::object(), finish);
    if (chat_.include_usage) {
      json u = {{"id", id},        {"object", "chat.completion.chunk"}, {"created", created},
                {"model", served}, {"choices", json::array()},          {"usage", usage}};
      absl::StrAppend(&sse, "data: ", u.dump(), "\n\n");
    }
    absl::StrAppend(&sse, "data: [DONE]\n\n");
    Response res{http::status::ok, version_};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(keep_alive_);
    res.body() = std::move(sse);
    res.chunked(true);
    Send(std::move(res));
  }

  // Like OpenAI and vLLM: every /v1 endpoint wants the key when one is set.
  bool Authorized(const http::request<http::string_body>& req) {
    for (const auto& [name, value] : server_->opt.required_headers) {
      auto got = req[name];
      if (absl::string_view(got.data(), got.size()) != value) {
        missing_header_ = name;
        auto target = req.target();
        server_->CountMissingHeader(absl::string_view(target.data(), target.size()));
        return false;
      }
    }
    missing_header_.clear();
    const std::string& key = server_->opt.api_key;
    if (key.empty()) return true;
    auto auth = req[http::field::authorization];
    return absl::string_view(auth.data(), auth.size()) == absl::StrCat("Bearer ", key);
  }

  void SendUnauthorized() {
    server_->unauthorized.fetch_add(1, std::memory_order_relaxed);
    if (!missing_header_.empty()) {
      return SendError(http::status::unauthorized,
                       absl::StrCat("This endpoint requires the header '", missing_header_, "'."),
                       "invalid_request_error", "missing_header");
    }
    SendError(http::status::unauthorized,
              "Incorrect API key provided. Pass it as 'Authorization: Bearer KEY'.",
              "invalid_request_error", "invalid_api_key");
  }

  // Retry-After is --retry-after, or the wait `retry_in` rounded up to whole
  // seconds (and exact in retry-after-ms, as Azure OpenAI sends it).
  void SendRateLimited(absl::string_view message,
                       std::optional<absl::Duration> retry_in = std::nullopt) {
    Response res{http::status::too_many_requests, version_};
    res.set(http::field::content_type, "application/json");
    if (retry_in) {
      res.set(http::field::retry_after,
              absl::StrCat(std::max<int64_t>(
                  1, absl::ToInt64Seconds(absl::Ceil(*retry_in, absl::Seconds(1))))));
      res.set(
          "retry-after-ms",
          absl::StrCat(absl::ToInt64Milliseconds(absl::Ceil(*retry_in, absl::Milliseconds(1)))));
    } else {
      res.set(http::field::retry_after, absl::StrCat(server_->retry_after_s.load()));
    }
    res.keep_alive(keep_alive_);
    res.body() = ErrorBody(message, "rate_limit_exceeded", "rate_limit_exceeded").dump();
    res.prepare_payload();
    Send(std::move(res));
  }

  void SendCanned(const CannedResponse& c) {
    Response res{static_cast<http::status>(c.status), version_};
    res.set(http::field::content_type, c.content_type);
    res.set(http::field::server, "nginx/1.22.1");
    if (!c.location.empty()) res.set(http::field::location, c.location);
    res.keep_alive(keep_alive_);
    res.body() = c.body;
    res.prepare_payload();
    Send(std::move(res));
  }

  void SendError(http::status status, absl::string_view message, absl::string_view type,
                 absl::string_view code) {
    SendText(status, "application/json", ErrorBody(message, type, code).dump());
  }

  // A chat answer: with the request id real servers send, gzip-compressed
  // when asked, or claiming gzip over a plain body (a broken proxy).
  void SendAnswer(std::string body) {
    Impl& s = *server_;
    Response res{http::status::ok, version_};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "medeval-sim");
    res.set("x-request-id", absl::StrCat("req-sim-", request_no_));
    if (s.response_faults.BadGzip(s.Draw(request_no_, "gzip"))) {
      s.response_faults.CountBadGzip();
      res.set(http::field::content_encoding, "gzip");
    } else if (s.opt.responses.gzip) {
      auto gz = Gzip(body);
      if (gz.ok()) {
        body = std::move(*gz);
        res.set(http::field::content_encoding, "gzip");
      }
    }
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    Send(std::move(res));
  }

  void SendText(http::status status, absl::string_view type, std::string body) {
    Response res{status, version_};
    res.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    res.set(http::field::server, "medeval-sim");
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    Send(std::move(res));
  }

  void Send(Response res) {
    res_ = std::make_shared<Response>(std::move(res));
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return;
    bool close = res_->need_eof();
    res_.reset();
    if (close) return Close();
    DoRead();
  }

  // Reset the connection without a response.
  void Drop() {
    beast::error_code ec;
    stream_.socket().set_option(net::socket_base::linger(true, 0), ec);
    stream_.socket().close(ec);
  }

  // Never answer; keep the connection until the client gives up.
  void Hang() {
    stream_.expires_never();
    stream_.async_read_some(net::buffer(sink_), [self = shared_from_this()](
                                                    beast::error_code, size_t) { self->Close(); });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> res_;
  Impl* server_;
  ChatRequest chat_;
  std::optional<SimCompletion> completion_;  // computed before the engine generates it
  uint64_t request_no_ = 0;
  bool garbage_ = false;
  bool keep_alive_ = true;
  std::string missing_header_;  // the required header the last request lacked
  unsigned version_ = 11;
  char sink_[512];
};

void SimServer::Impl::StartSession(tcp::socket socket) {
  std::make_shared<Session>(std::move(socket), this)->Run();
}

}  // namespace medeval::sim
