// The Scheduler's auto concurrency: one ConcurrencyController per model
// endpoint, fed by the answers and load signals of all of the model's
// workers that run with `--concurrency auto`, its limit split among them.
// The limit is model-wide because the endpoint is: four workers in front of
// one vLLM replica share its KV cache and its knee, and a hosted API's rate
// limit counts them together.
#include <algorithm>
#include <vector>

#include "common/log.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_internal.h"

namespace medeval {
namespace {

// What a new auto worker adds to the limit while the model is starting: the
// fixed default, so a model starts as fast as it did with fixed workers.
constexpr int kInitialShare = 16;

// The model's ceiling: what its auto workers may have in flight together.
template <typename Workers>
int AutoMax(const Workers& workers, const std::string& model) {
  int max = 0;
  for (const auto& [id, w] : workers) {
    if (w->hello.model() == model && w->hello.auto_concurrency()) {
      max += static_cast<int>(w->hello.max_inflight());
    }
  }
  return max;
}

}  // namespace

void Scheduler::JoinAutoConcurrency(Worker* w) {
  if (!w->hello.auto_concurrency()) return;
  Model& m = models_[w->hello.model()];
  const int initial = std::min<int>(kInitialShare, static_cast<int>(w->hello.max_inflight()));
  if (!m.concurrency) {
    ConcurrencyController::Options o = options_.auto_concurrency;
    o.initial = initial;
    o.max = AutoMax(workers_, w->hello.model());
    m.concurrency = std::make_unique<ConcurrencyController>(o, options_.clock->Now());
  } else {
    m.concurrency->set_max(AutoMax(workers_, w->hello.model()));
    m.concurrency->OnWorkerJoined(initial);
  }
  ShareConcurrency(w->hello.model());
}

void Scheduler::FeedConcurrency(Worker* w, const v1::Result& r) {
  if (!r.has_answer()) return;
  auto it = models_.find(w->hello.model());
  if (it == models_.end() || !it->second.concurrency) return;
  it->second.concurrency->OnAnswer(absl::Seconds(r.answer().latency_s()),
                                   r.answer().total_tokens());
}

void Scheduler::FeedConcurrency(Worker* w, const v1::LoadSignals& load) {
  auto it = models_.find(w->hello.model());
  if (it == models_.end() || !it->second.concurrency) return;
  for (uint32_t i = 0; i < load.rate_limited(); ++i) it->second.concurrency->OnRateLimited();
  for (uint32_t i = 0; i < load.timed_out(); ++i) it->second.concurrency->OnTimeout();
}

void Scheduler::TickConcurrency(absl::Time now) {
  for (auto& [name, model] : models_) {
    if (!model.concurrency) continue;
    const int before = model.concurrency->limit();
    if (model.concurrency->Tick(now)) {
      MEDEVAL_LOG(INFO) << "model " << name << ": " << before << " -> "
                        << model.concurrency->limit() << " requests in flight ("
                        << model.concurrency->reason() << ")";
    }
    // Also when workers came, went, or their endpoint came back.
    ShareConcurrency(name);
  }
}

void Scheduler::ShareConcurrency(const std::string& model) {
  auto mit = models_.find(model);
  if (mit == models_.end() || !mit->second.concurrency) return;
  ConcurrencyController& c = *mit->second.concurrency;
  if (const int max = AutoMax(workers_, model); max > 0) c.set_max(max);  // workers left
  std::vector<Worker*> sharing;
  for (auto& [id, w] : workers_) {
    if (w->hello.model() == model && w->hello.auto_concurrency() && w->usable()) {
      sharing.push_back(w.get());
    }
  }
  if (sharing.empty()) return;
  std::sort(sharing.begin(), sharing.end(),
            [](const Worker* a, const Worker* b) { return a->id < b->id; });
  const uint32_t n = static_cast<uint32_t>(sharing.size());
  const uint32_t limit = static_cast<uint32_t>(c.limit());
  for (uint32_t i = 0; i < n; ++i) {
    Worker* w = sharing[i];
    // Every worker keeps at least one request going, whatever the limit.
    uint32_t share = std::max<uint32_t>(1, limit / n + (i < limit % n ? 1 : 0));
    share = std::min(share, w->hello.max_inflight());
    if (share == w->share) continue;
    const bool grew = share > w->share;
    w->share = share;
    v1::CoordinatorMessage msg;
    v1::ConcurrencyShare* s = msg.mutable_concurrency();
    s->set_limit(share);
    s->set_model_limit(limit);
    s->set_reason(c.reason());
    w->channel->Send(std::move(msg));
    if (grew) Dispatch(w);
  }
}

}  // namespace medeval
