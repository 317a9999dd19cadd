#include "sim/batching_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace medeval::sim {

BatchingEngine::BatchingEngine(EngineOptions options) : options_(options) {}

absl::Status BatchingEngine::Add(uint64_t id, int64_t prompt_tokens, int64_t completion_tokens) {
  Sequence s;
  s.id = id;
  s.prompt = std::max<int64_t>(prompt_tokens, 0);
  // Even an empty answer takes one step: its end-of-sequence token.
  s.completion = std::max<int64_t>(completion_tokens, 1);
  if (FullSize(s) > options_.kv_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("This model's maximum context length is ", options_.kv_tokens,
                     " tokens. However, you requested ", FullSize(s), " tokens (", s.prompt,
                     " in the messages, ", s.completion, " in the completion)."));
  }
  if (!ids_.insert(id).second) {
    return absl::InternalError(absl::StrCat("sequence ", id, " is already in the engine"));
  }
  queue_.push_back(s);
  return absl::OkStatus();
}

void BatchingEngine::Preempt() {
  Sequence s = running_.back();
  running_.pop_back();
  used_ -= Size(s);
  reserved_ -= FullSize(s);
  s.generated = 0;  // recompute: its KV cache is gone
  queue_.push_front(s);
  ++counters_.preemptions;
}

absl::Duration BatchingEngine::BeginStep() {
  if (idle()) return absl::ZeroDuration();
  in_step_ = true;
  const int64_t kv = options_.kv_tokens;
  bool preempted = false;
  if (options_.preempt) {
    // Every running sequence is about to add one token. The last one left
    // runs alone whatever its size, so the engine never stalls.
    while (running_.size() > 1 && used_ + static_cast<int64_t>(running_.size()) > kv) {
      Preempt();
      preempted = true;
    }
  }
  int64_t prefill = 0;
  // Like vLLM, a step that had to preempt admits nobody.
  while (!preempted && !queue_.empty() &&
         static_cast<int64_t>(running_.size()) < std::max(options_.max_running, 1)) {
    const Sequence& s = queue_.front();
    // With preemption: the prompt and the step's tokens (one per running
    // sequence, this one's included) must fit now; the future is ignored.
    const bool fits = options_.preempt
                          ? used_ + static_cast<int64_t>(running_.size()) + s.prompt + 1 <= kv
                          : reserved_ + FullSize(s) <= kv;
    if (!fits && !running_.empty()) break;
    used_ += s.prompt;
    reserved_ += FullSize(s);
    prefill += s.prompt;
    running_.push_back(s);
    queue_.pop_front();
    ++counters_.admitted;
  }
  counters_.prefill_tokens += static_cast<uint64_t>(prefill);
  ++counters_.steps;
  const double ms = options_.step_ms +
                    options_.step_ms_per_seq * static_cast<double>(running_.size()) +
                    options_.step_ms_per_queued * static_cast<double>(queue_.size()) +
                    options_.prefill_ms_per_1k_tokens * static_cast<double>(prefill) / 1000;
  // A step always takes some time, so a driver's loop cannot spin.
  return std::max(absl::Milliseconds(ms), absl::Microseconds(1));
}

std::vector<uint64_t> BatchingEngine::EndStep() {
  std::vector<uint64_t> finished;
  if (!in_step_) return finished;
  in_step_ = false;
  std::vector<Sequence> still;
  still.reserve(running_.size());
  for (Sequence& s : running_) {
    ++s.generated;
    ++used_;
    ++counters_.decode_tokens;
    if (s.generated < s.completion) {
      still.push_back(s);
      continue;
    }
    used_ -= Size(s);
    reserved_ -= FullSize(s);
    ids_.erase(s.id);
    ++counters_.finished;
    finished.push_back(s.id);
  }
  running_.swap(still);
  return finished;
}

EngineStats BatchingEngine::stats() const {
  EngineStats s = counters_;
  s.running = static_cast<int64_t>(running_.size());
  s.queued = static_cast<int64_t>(queue_.size());
  s.kv_tokens_used = used_;
  return s;
}

}  // namespace medeval::sim
