#include "sim/engine_driver.h"

#include <boost/asio/post.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace medeval::sim {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;

// A timer this late restarts the cadence instead of catching up.
constexpr auto kMaxLag = std::chrono::milliseconds(5);

}  // namespace

EngineDriver::EngineDriver(net::io_context& ioc, EngineOptions options)
    : strand_(net::make_strand(ioc)), timer_(strand_), engine_(options) {}

absl::Status EngineDriver::Submit(int64_t prompt_tokens, int64_t completion_tokens,
                                  std::function<void()> on_done) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  absl::Status st = engine_.Add(id, prompt_tokens, completion_tokens);
  if (!st.ok()) return st;
  callbacks_[id] = std::move(on_done);
  if (!stepping_) {
    stepping_ = true;
    net::post(strand_, [this] { Step(); });
  }
  return absl::OkStatus();
}

void EngineDriver::Step() {
  absl::Duration d;
  {
    absl::MutexLock lock(&mu_);
    d = engine_.BeginStep();
    if (d == absl::ZeroDuration()) {
      stepping_ = false;
      return;
    }
  }
  const Clock::time_point now = Clock::now();
  const Clock::time_point start = now - deadline_ <= kMaxLag ? deadline_ : now;
  deadline_ = start + std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d));
  timer_.expires_at(deadline_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) EndStep();
  });
}

void EngineDriver::EndStep() {
  std::vector<std::function<void()>> done;
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t id : engine_.EndStep()) {
      auto it = callbacks_.find(id);
      if (it == callbacks_.end()) continue;
      done.push_back(std::move(it->second));
      callbacks_.erase(it);
    }
  }
  for (auto& f : done) f();
  Step();
}

json EngineDriver::Stats() const {
  absl::MutexLock lock(&mu_);
  const EngineStats s = engine_.stats();
  const EngineOptions& o = engine_.options();
  return json{{"running", s.running},
              {"queued", s.queued},
              {"kv_tokens_used", s.kv_tokens_used},
              {"kv_tokens", o.kv_tokens},
              {"steps", s.steps - base_.steps},
              {"preemptions", s.preemptions - base_.preemptions},
              {"admitted", s.admitted - base_.admitted},
              {"finished", s.finished - base_.finished},
              {"prefill_tokens", s.prefill_tokens - base_.prefill_tokens},
              {"decode_tokens", s.decode_tokens - base_.decode_tokens},
              {"settings",
               {{"step_ms", o.step_ms},
                {"step_ms_per_seq", o.step_ms_per_seq},
                {"step_ms_per_queued", o.step_ms_per_queued},
                {"prefill_ms_per_1k_tokens", o.prefill_ms_per_1k_tokens},
                {"max_running", o.max_running},
                {"preempt", o.preempt}}}};
}

void EngineDriver::ResetStats() {
  absl::MutexLock lock(&mu_);
  base_ = engine_.stats();
}

bool EngineDriver::Control(const std::string& key, const json& value, std::string* error) {
  absl::MutexLock lock(&mu_);
  EngineOptions o = engine_.options();
  struct Knob {
    const char* name;
    double* value;
  };
  const Knob knobs[] = {{"step_ms", &o.step_ms},
                        {"step_ms_per_seq", &o.step_ms_per_seq},
                        {"step_ms_per_queued", &o.step_ms_per_queued},
                        {"prefill_ms_per_1k_tokens", &o.prefill_ms_per_1k_tokens}};
  bool known = false;
  for (const Knob& k : knobs) {
    if (key != k.name) continue;
    known = true;
    if (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 60000) {
      *error = absl::StrCat("'", key, "' must be a number of milliseconds from 0 to 60000");
    } else {
      *k.value = value.get<double>();
    }
  }
  if (key == "kv_tokens") {
    known = true;
    if (!value.is_number_integer() || value.get<int64_t>() < 1) {
      *error = "'kv_tokens' must be an integer >= 1";
    } else {
      o.kv_tokens = value.get<int64_t>();
    }
  }
  if (key == "max_running") {
    known = true;
    if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > 1000000) {
      *error = "'max_running' must be an integer from 1 to 1000000";
    } else {
      o.max_running = value.get<int>();
    }
  }
  if (key == "preempt") {
    known = true;
    if (value.is_boolean()) {
      o.preempt = value.get<bool>();
    } else if (value.is_number()) {
      o.preempt = value.get<double>() != 0;
    } else {
      *error = "'preempt' must be 0 or 1";
    }
  }
  if (known && error->empty()) engine_.set_options(o);
  return known;
}

EngineOptions EngineDriver::options() const {
  absl::MutexLock lock(&mu_);
  return engine_.options();
}

void EngineDriver::DropCallbacks() {
  absl::flat_hash_map<uint64_t, std::function<void()>> dropped;
  absl::MutexLock lock(&mu_);
  dropped.swap(callbacks_);
  // `dropped` is destroyed after the lock is released (declared first).
}

}  // namespace medeval::sim
