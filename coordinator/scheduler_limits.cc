// The Scheduler's rate limits: per-model request and token budgets handed
// to workers as grants, and model-wide pauses after a 429 with Retry-After;
// and workers whose endpoint is down (they take no work until it is back).
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_internal.h"

namespace medeval {

void Scheduler::SetLimits(const std::string& model, const v1::ModelLimits& limits) {
  absl::MutexLock lock(&mu_);
  SetLimitsLocked(model, limits);
}

void Scheduler::SetLimitsLocked(const std::string& model, const v1::ModelLimits& limits) {
  if (limits.rpm() <= 0 && limits.tpm() <= 0) return;
  Model& m = models_[model];
  if (m.limits.rpm() == limits.rpm() && m.limits.tpm() == limits.tpm()) return;
  const bool newly_limited = !m.limited();
  m.limits = limits;
  const absl::Time now = options_.clock->Now();
  // Half a second of burst keeps the rate within a few percent over any
  // window of seconds.
  const double rpm = limits.rpm(), tpm = limits.tpm();
  m.requests = rpm > 0 ? TokenBucket(rpm / 60, std::max(1.0, rpm / 120), now) : TokenBucket();
  m.tokens = tpm > 0 ? TokenBucket(tpm / 60, tpm / 60, now) : TokenBucket();
  MEDEVAL_LOG(INFO) << "model " << model << ": budgets of "
                    << (rpm > 0 ? absl::StrCat(rpm, " requests") : "unlimited requests") << " and "
                    << (tpm > 0 ? absl::StrCat(tpm, " tokens") : "unlimited tokens")
                    << " per minute, shared by its workers";
  if (newly_limited) {
    // Workers that already know the model's runs must learn that they need grants.
    for (auto& [id, w] : workers_) {
      if (w->hello.model() == model) w->runs_sent.clear();
    }
  }
}

void Scheduler::Grant(const std::string& model_name) {
  auto mit = models_.find(model_name);
  if (mit == models_.end() || !mit->second.limited()) return;
  Model& m = mit->second;
  const absl::Time now = options_.clock->Now();
  m.requests.Refill(now);
  m.tokens.Refill(now);
  if (now < m.paused_until) return;
  std::vector<Worker*> wanting;
  for (auto& [id, w] : workers_) {
    if (w->hello.model() == model_name && w->usable() && w->grant_demand() > 0) {
      wanting.push_back(w.get());
    }
  }
  if (wanting.empty()) return;
  std::sort(wanting.begin(), wanting.end(),
            [](const Worker* a, const Worker* b) { return a->id < b->id; });
  absl::flat_hash_map<Worker*, uint32_t> given;
  // One grant per worker in turn, starting where the last round stopped, so
  // workers share the budget evenly even when it allows one grant a tick.
  size_t idle = 0;
  while (idle < wanting.size()) {
    // Tokens are charged an estimate up front and settled when the answer
    // says what it used, so a positive balance is enough to go.
    if (!m.requests.CanTake(1) || (m.tokens.enabled() && m.tokens.tokens() <= 0)) break;
    Worker* w = wanting[m.next_grantee++ % wanting.size()];
    if (w->grant_demand() == 0) {
      ++idle;
      continue;
    }
    idle = 0;
    m.requests.Take(1);
    m.tokens.Take(m.tokens_per_request);
    ++w->granted;
    ++given[w];
    ++counters_.grants;
  }
  for (auto& [w, n] : given) {
    v1::CoordinatorMessage msg;
    msg.set_grants(n);
    w->channel->Send(std::move(msg));
  }
}

bool Scheduler::ModelPaused(const std::string& model, absl::Time now) {
  auto it = models_.find(model);
  return it != models_.end() && now < it->second.paused_until;
}

void Scheduler::SetEndpointState(Worker* w, const v1::EndpointState& state) {
  const bool was_down = w->endpoint.down();
  w->endpoint = state;
  if (state.down() && !was_down) {
    MEDEVAL_LOG(WARNING) << "worker " << w->id << ": endpoint down: " << state.reason();
  } else if (!state.down() && was_down) {
    MEDEVAL_LOG(WARNING) << "worker " << w->id << ": endpoint answers again";
  }
}

void Scheduler::PauseModel(Worker* from, absl::Duration d) {
  const std::string& name = from->hello.model();
  Model& m = models_[name];
  if (d > options_.max_pause) {
    MEDEVAL_LOG(WARNING) << "model " << name << ": worker " << from->id << " asked for a pause of "
                         << d << "; capped at " << options_.max_pause;
    d = options_.max_pause;
  }
  const absl::Time until = options_.clock->Now() + d;
  if (until <= m.paused_until) return;  // already paused at least that long
  m.paused_until = until;
  ++counters_.model_pauses;
  MEDEVAL_LOG(WARNING) << "model " << name << ": paused for " << d << " (worker " << from->id
                       << " got 429 with Retry-After)";
  for (auto& [id, w] : workers_) {
    if (w->hello.model() != name) continue;
    v1::CoordinatorMessage msg;
    msg.set_pause_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(d)));
    w->channel->Send(std::move(msg));
  }
}

}  // namespace medeval
