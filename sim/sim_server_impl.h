// The simulator's state, shared by the server (sim_server.cc) and its HTTP
// sessions (sim_session.cc); private to sim/.
//
// Thread-safety: the atomics and `per_question` (behind qmu) are touched from
// every I/O thread; the acceptor only on accept_strand; the rest is set
// before the I/O threads start.
#ifndef MEDEVAL_SIM_SIM_SERVER_IMPL_H_
#define MEDEVAL_SIM_SIM_SERVER_IMPL_H_

#include <atomic>
#include <boost/asio.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/stable_hash.h"
#include "sim/capacity_gate.h"
#include "sim/engine_driver.h"
#include "sim/rate_limiter.h"
#include "sim/sim_server.h"

namespace medeval::sim {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct QuestionCount {
  uint64_t requests = 0;
  uint64_t answered = 0;
  uint64_t images = 0;  // valid image parts in the last request
};

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

  class Session;  // one HTTP connection (sim_session.cc)
  void DoAccept();
  // Serves `socket` until the client or an outage ends the connection.
  void StartSession(tcp::socket socket);
  nlohmann::json Stats();
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
  void CountMissingHeader(absl::string_view target);

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
  // Requests without a required header: chat, files, batches, other.
  std::atomic<uint64_t> missing_header[4] = {};
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

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_SIM_SERVER_IMPL_H_
