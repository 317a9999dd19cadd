#include "sim/sim_server.h"

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

namespace medeval::sim {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Response = http::response<http::string_body>;

constexpr size_t kBodyLimit = 256 << 20;  // VLM requests carry images
constexpr auto kIdleTimeout = std::chrono::minutes(5);
constexpr char kSystemFingerprint[] = "fp_medeval_sim";

struct QuestionCount {
  uint64_t requests = 0;
  uint64_t answered = 0;
  uint64_t images = 0;  // valid image parts in the last request
};

json ErrorBody(absl::string_view message, absl::string_view type, absl::string_view code) {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}};
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

}  // namespace

struct SimServer::Impl {
  explicit Impl(SimOptions o)
      : opt(std::move(o)),
        gate(opt.capacity),
        fail_rate(opt.fail_rate),
        ratelimit_rate(opt.ratelimit_rate),
        drop_rate(opt.drop_rate),
        garbage_rate(opt.garbage_rate),
        hang_rate(opt.hang_rate),
        latency_ms(opt.latency_ms),
        retry_after_s(opt.retry_after_s),
        response_faults(opt.responses),
        batches(
            opt.batch, opt.style,
            BatchApi::Hooks{[this](const std::string& q, int images) { CountQuestion(q, images); },
                            [this](const std::string& q) { CountAnswered(q); }}),
        faults(opt.endpoint_faults),
        rate_limiter(opt.rate_limit_rps),
        accept_strand(net::make_strand(ioc)),
        engine(ioc, opt.engine) {}

  class Session;
  void DoAccept();
  json Stats();
  void CountQuestion(const std::string& question, int images);
  void CountAnswered(const std::string& question);
  void EnterService();
  void LeaveService();
  void Reset();
  // A per-request pseudo-random number in [0, 1), reproducible for a given
  // seed and request order.
  double Draw(uint64_t n, absl::string_view what) {
    return HashToUnit(StableHashOf({what, absl::StrCat(n)}, opt.style.seed));
  }
  double LatencyMs(uint64_t n);

  // POST /control changes these while serving (fault drills).
  std::string Control(const std::string& body);

  // The outage: the listening socket is closed for a while (connection
  // refused) and open connections are reset when they next speak.
  bool Down() const { return absl::Now() < absl::FromUnixNanos(down_until_ns.load()); }
  void GoDown(absl::Duration d);
  void Reopen();
  void CountCompleted();

  SimOptions opt;
  CapacityGate gate;
  std::atomic<double> fail_rate, ratelimit_rate, drop_rate, garbage_rate, hang_rate, latency_ms;
  std::atomic<int> retry_after_s;
  ResponseFaults response_faults;
  int port = 0;
  std::atomic<uint64_t> counter{0};
  std::atomic<uint64_t> connections{0}, requests{0}, completed{0}, bad_requests{0}, unauthorized{0};
  std::atomic<uint64_t> f_ratelimit{0}, f_server_error{0}, f_drop{0}, f_garbage{0}, f_hang{0},
      f_capacity{0}, images_ok{0}, images_bad{0}, prompt_tokens{0}, completion_tokens{0};
  BatchApi batches;
  std::atomic<int64_t> in_service{0}, max_in_service{0};
  absl::Mutex qmu;
  absl::flat_hash_map<std::string, QuestionCount> per_question ABSL_GUARDED_BY(qmu);
  std::vector<std::thread> threads;
  EndpointFaults faults;
  RateLimiter rate_limiter;
  std::atomic<int64_t> down_until_ns{0};
  std::atomic<uint64_t> down_episodes{0};
  std::atomic<bool> down_triggered{false};  // the --down-after outage happened
  tcp::endpoint bound;                      // where to listen again after an outage
  // Declared last so it is destroyed first: pending handlers (and the
  // sessions they hold) go before the members they use.
  net::io_context ioc;
  // The acceptor is touched only on this strand (outages close and reopen it).
  net::strand<net::io_context::executor_type> accept_strand;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> reopen_timer;
  // Serves chat completions with opt.batching_engine (its timer is the io_context's).
  EngineDriver engine;
};

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
    const std::string& key = server_->opt.api_key;
    if (key.empty()) return true;
    auto auth = req[http::field::authorization];
    return absl::string_view(auth.data(), auth.size()) == absl::StrCat("Bearer ", key);
  }

  void SendUnauthorized() {
    server_->unauthorized.fetch_add(1, std::memory_order_relaxed);
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
  unsigned version_ = 11;
  char sink_[512];
};

void SimServer::Impl::DoAccept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      MEDEVAL_LOG(WARNING) << "sim: accept failed: " << ec.message();
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      connections.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(std::move(socket), this)->Run();
    }
    DoAccept();
  });
}

void SimServer::Impl::CountCompleted() {
  const uint64_t n = completed.fetch_add(1, std::memory_order_relaxed) + 1;
  if (opt.down_after >= 0 && n >= static_cast<uint64_t>(opt.down_after) &&
      !down_triggered.exchange(true)) {
    GoDown(opt.down_for);
  }
}

void SimServer::Impl::GoDown(absl::Duration d) {
  down_until_ns = absl::ToUnixNanos(absl::Now() + d);
  ++down_episodes;
  MEDEVAL_LOG(WARNING) << "sim: down for " << d << " (connections refused)";
  net::post(accept_strand, [this, d] {
    beast::error_code ec;
    if (acceptor) acceptor->close(ec);
    reopen_timer.emplace(accept_strand);
    reopen_timer->expires_after(absl::ToChronoNanoseconds(d));
    reopen_timer->async_wait([this](beast::error_code ec) {
      if (!ec) Reopen();
    });
  });
}

void SimServer::Impl::Reopen() {
  if (Down()) {  // extended meanwhile
    reopen_timer->expires_after(absl::ToChronoNanoseconds(
        absl::FromUnixNanos(down_until_ns.load()) - absl::Now() + absl::Milliseconds(1)));
    reopen_timer->async_wait([this](beast::error_code ec) {
      if (!ec) Reopen();
    });
    return;
  }
  acceptor.emplace(accept_strand);
  beast::error_code ec;
  acceptor->open(bound.protocol(), ec);
  if (!ec) acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) ::fcntl(acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) acceptor->bind(bound, ec);
  if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    MEDEVAL_LOG(WARNING) << "sim: cannot listen again on port " << bound.port() << ": "
                         << ec.message() << "; retrying";
    acceptor.reset();
    reopen_timer->expires_after(std::chrono::milliseconds(100));
    reopen_timer->async_wait([this](beast::error_code ec) {
      if (!ec) Reopen();
    });
    return;
  }
  MEDEVAL_LOG(WARNING) << "sim: serving again on port " << bound.port();
  DoAccept();
}

void SimServer::Impl::CountQuestion(const std::string& question, int images) {
  std::string key = QuestionKey(question);
  absl::MutexLock lock(&qmu);
  QuestionCount& c = per_question[key];
  ++c.requests;
  c.images = static_cast<uint64_t>(images);
}

void SimServer::Impl::CountAnswered(const std::string& question) {
  std::string key = QuestionKey(question);
  absl::MutexLock lock(&qmu);
  ++per_question[key].answered;
}

std::string SimServer::Impl::Control(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return "POST /control takes a JSON object, e.g. {\"ratelimit_rate\": 1}";
  std::vector<std::string> handled;
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string error;
    if (faults.Control(it.key(), *it, &error)) {
      if (!error.empty()) return error;
      handled.push_back(it.key());
    } else if (engine.Control(it.key(), *it, &error)) {
      if (!error.empty()) return error;
      if (!opt.batching_engine) {
        return absl::StrCat("'", it.key(), "' is a setting of the batching engine, which is off ",
                            "(medeval sim --engine batching)");
      }
      handled.push_back(it.key());
    } else if (it.key() == "rate_limit_rps") {
      if (!it->is_number() || it->get<double>() < 0) {
        return "'rate_limit_rps' must be a number of requests per second >= 0 (0: no limit)";
      }
      rate_limiter.set_rps(it->get<double>());
      handled.push_back(it.key());
    }
  }
  for (const std::string& k : handled) j.erase(k);
  if (j.contains("down_s")) {
    if (!j["down_s"].is_number() || j["down_s"].get<double>() <= 0) {
      return "'down_s' must be a number of seconds > 0";
    }
    GoDown(absl::Seconds(j["down_s"].get<double>()));
    j.erase("down_s");
  }
  struct Knob {
    const char* name;
    std::atomic<double>* value;
    double max;
  };
  const Knob knobs[] = {{"fail_rate", &fail_rate, 1}, {"ratelimit_rate", &ratelimit_rate, 1},
                        {"drop_rate", &drop_rate, 1}, {"garbage_rate", &garbage_rate, 1},
                        {"hang_rate", &hang_rate, 1}, {"latency_ms", &latency_ms, 3.6e6}};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number() || it->get<double>() < 0)
      return absl::StrCat("'", it.key(), "' must be a number >= 0");
    if (it.key() == "retry_after_s") {
      retry_after_s = it->get<int>();
      continue;
    }
    if (it.key() != "latency_ms" && it->get<double>() > 1 && absl::EndsWith(it.key(), "_rate")) {
      return absl::StrCat("'", it.key(), "' must be at most 1");
    }
    bool known = response_faults.Set(it.key(), it->get<double>());
    for (const Knob& k : knobs) {
      if (it.key() != k.name) continue;
      if (it->get<double>() > k.max) return absl::StrCat("'", k.name, "' must be at most ", k.max);
      k.value->store(it->get<double>());
      known = true;
    }
    if (!known) return absl::StrCat("unknown setting '", it.key(), "'");
  }
  return "";
}

void SimServer::Impl::Reset() {
  for (auto* c : {&connections, &requests, &completed, &bad_requests, &unauthorized, &f_ratelimit,
                  &f_server_error, &f_drop, &f_garbage, &f_hang, &f_capacity, &images_ok,
                  &images_bad, &prompt_tokens, &completion_tokens, &down_episodes}) {
    c->store(0);
  }
  faults.ResetStats();
  engine.ResetStats();
  rate_limiter.ResetCounts();
  max_in_service.store(in_service.load());
  response_faults.Reset();
  absl::MutexLock lock(&qmu);
  per_question.clear();
}

void SimServer::Impl::EnterService() {
  int64_t now = in_service.fetch_add(1) + 1;
  int64_t prev = max_in_service.load();
  while (now > prev && !max_in_service.compare_exchange_weak(prev, now)) {
  }
}

void SimServer::Impl::LeaveService() {
  in_service.fetch_sub(1);
  gate.Release();
}

double SimServer::Impl::LatencyMs(uint64_t n) {
  const double latency = latency_ms.load();
  if (latency <= 0) return 0;
  if (opt.jitter_sigma <= 0) return latency;
  // Box-Muller on two per-request draws; exp(sigma*z - sigma^2/2) has mean 1.
  double u1 = std::max(Draw(n, "jitter1"), 1e-12);
  double u2 = Draw(n, "jitter2");
  double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  double s = opt.jitter_sigma;
  return latency * std::exp(s * z - s * s / 2);
}

json SimServer::Impl::Stats() {
  json per = json::object();
  uint64_t duplicated = 0;
  size_t distinct = 0;
  {
    absl::MutexLock lock(&qmu);
    distinct = per_question.size();
    for (const auto& [key, c] : per_question) {
      if (c.requests > 1) ++duplicated;
      per[key] = {{"requests", c.requests}, {"answered", c.answered}, {"images", c.images}};
    }
  }
  return json{
      {"settings",
       {{"engine", opt.batching_engine ? "batching" : "fixed"},
        {"latency_ms", latency_ms.load()},
        {"capacity", opt.capacity},
        {"overflow", opt.overflow_reject ? "reject" : "queue"},
        {"completion_tokens", opt.style.completion_tokens}}},
      {"connections", connections.load()},
      {"requests", requests.load()},
      {"completed", completed.load()},
      {"in_flight", in_service.load()},
      {"queued", gate.waiting()},
      {"max_concurrency", max_in_service.load()},
      {"bad_requests", bad_requests.load()},
      {"unauthorized", unauthorized.load()},
      {"faults",
       {{"ratelimit", f_ratelimit.load()},
        {"server_error", f_server_error.load()},
        {"drop", f_drop.load()},
        {"garbage", f_garbage.load()},
        {"hang", f_hang.load()},
        {"capacity_rejected", f_capacity.load()}}},
      {"endpoint_faults", faults.Stats()},
      {"rate_limit",
       {{"rps", rate_limiter.rps()},
        {"admitted", rate_limiter.admitted()},
        {"limited", rate_limiter.limited()}}},
      {"engine", opt.batching_engine ? engine.Stats() : json(nullptr)},
      {"down_episodes", down_episodes.load()},
      {"down", Down()},
      {"response_faults", response_faults.StatsJson()},
      {"images", {{"valid", images_ok.load()}, {"invalid", images_bad.load()}}},
      {"tokens", {{"prompt", prompt_tokens.load()}, {"completion", completion_tokens.load()}}},
      {"batch", batches.Stats()},
      {"questions", distinct},
      {"questions_asked_more_than_once", duplicated},
      {"per_question", std::move(per)}};
}

SimServer::SimServer(SimOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

SimServer::~SimServer() { Stop(); }

absl::Status SimServer::Start() {
  const std::string& listen = impl_->opt.listen;
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen '", listen, "' must be HOST:PORT (port 0 picks a free one)"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(impl_->ioc);
    auto results = resolver.resolve(host, "0", ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--listen: cannot resolve host '", host, "'"));
    }
    addr = results.begin()->endpoint().address();
  }
  // Port 0: a free port below the kernel's ephemeral range (32768 and up by
  // default), so that during an outage a client's connect can never pick the
  // same port as its own source and connect to itself (TCP self-connect),
  // which would keep the port taken when the server wants it back.
  absl::BitGen gen;
  for (int attempt = 0; attempt <= 64; ++attempt) {
    const int try_port = port != 0 || attempt == 64 ? port : absl::Uniform(gen, 10000, 32000);
    tcp::endpoint endpoint(addr, static_cast<unsigned short>(try_port));
    ec.clear();
    impl_->acceptor.emplace(impl_->accept_strand);
    impl_->acceptor->open(endpoint.protocol(), ec);
    if (!ec) impl_->acceptor->set_option(net::socket_base::reuse_address(true), ec);
    // Not inherited by child processes: one would keep the port listening
    // through an outage (connections queue instead of being refused).
    if (!ec) ::fcntl(impl_->acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
    if (!ec) impl_->acceptor->bind(endpoint, ec);
    if (!ec) impl_->acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (!ec || port != 0) break;
  }
  if (ec) {
    impl_->acceptor.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
  }
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->bound = impl_->acceptor->local_endpoint();
  impl_->DoAccept();
  int threads = impl_->opt.threads > 0 ? impl_->opt.threads
                                       : std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  return absl::OkStatus();
}

int SimServer::port() const { return impl_->port; }

void SimServer::Stop() {
  if (impl_->threads.empty()) return;
  net::post(impl_->accept_strand, [this] {
    beast::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
    if (impl_->reopen_timer) impl_->reopen_timer->cancel();
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Requests still queued for capacity hold their sessions, whose sockets
  // and timers belong to the io_context: they must go while it still exists.
  impl_->gate.DropWaiters();
  impl_->engine.DropCallbacks();
}

std::string SimServer::StatsJson() const { return impl_->Stats().dump(); }

void SimServer::GoDown(absl::Duration d) { impl_->GoDown(d); }

std::string SimServer::Control(const std::string& json_body) { return impl_->Control(json_body); }

absl::Status ParseOverflow(const std::string& value, bool* reject) {
  if (value == "queue") {
    *reject = false;
  } else if (value == "reject") {
    *reject = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--overflow must be 'queue' or 'reject', not '", value, "'"));
  }
  return absl::OkStatus();
}

}  // namespace medeval::sim
