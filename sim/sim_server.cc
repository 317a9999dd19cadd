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
#include "sim/sim_server_impl.h"

namespace medeval::sim {
namespace {

namespace beast = boost::beast;
using json = nlohmann::json;

}  // namespace

void SimServer::Impl::DoAccept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      MEDEVAL_LOG(WARNING) << "sim: accept failed: " << ec.message();
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      connections.fetch_add(1, std::memory_order_relaxed);
      StartSession(std::move(socket));
    }
    DoAccept();
  });
}

void SimServer::Impl::CountMissingHeader(absl::string_view target) {
  const int kind = absl::StrContains(target, "/chat/completions") ? 0
                   : absl::StartsWith(target, "/v1/files")          ? 1
                   : absl::StartsWith(target, "/v1/batches")        ? 2
                                                                    : 3;
  missing_header[kind].fetch_add(1, std::memory_order_relaxed);
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
                  &images_bad, &prompt_tokens, &completion_tokens, &down_episodes,
                  &missing_header[0], &missing_header[1], &missing_header[2],
                  &missing_header[3]}) {
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
      {"missing_header",
       {{"chat", missing_header[0].load()},
        {"files", missing_header[1].load()},
        {"batches", missing_header[2].load()},
        {"other", missing_header[3].load()}}},
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

}  // namespace medeval::sim
