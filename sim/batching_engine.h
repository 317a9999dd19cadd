// A continuous-batching inference engine (vLLM's scheduler, reduced to what
// shapes throughput and latency), so that a client's concurrency can be
// measured against an endpoint whose best throughput lies at a knee.
//
// The engine runs in steps. A step admits queued sequences (their prompts are
// prefilled in it), then every running sequence emits one token; a sequence
// finishes after its completion's token count. A step takes
//   step_ms + step_ms_per_seq * running + step_ms_per_queued * queued
//   + prefill_ms_per_1k_tokens * (prompt tokens admitted) / 1000,
// so a bigger batch is slower per step but faster per token, until the KV
// cache is full. The KV cache holds the prompt and generated tokens of the
// running sequences, at most kv_tokens:
//   - without preemption a sequence is admitted only when its whole size
//     (prompt + completion) fits next to the running sequences' whole sizes;
//     the rest wait in FIFO order (throughput levels off, latency grows);
//   - with preemption (vLLM) sequences are admitted when their prompt fits
//     now; when the growing sequences overflow the cache, the most recently
//     admitted one is preempted: it loses its progress and goes back to the
//     front of the queue, to be prefilled and generated again (recompute).
//     Past the knee the engine thrashes: throughput falls, latency soars.
// The per-queued term stands for the scheduler's and the API server's work
// for every waiting request, which makes an overloaded server slower still.
//
// The engine keeps no clock: the caller runs BeginStep, waits the duration it
// returns (a real timer, or a test's fake clock), then calls EndStep.
//
// Thread-safety: none; the caller serializes every call (sim/engine_driver.h
// holds it behind a mutex).
#ifndef MEDEVAL_SIM_BATCHING_ENGINE_H_
#define MEDEVAL_SIM_BATCHING_ENGINE_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace medeval::sim {

struct EngineOptions {
  double step_ms = 2;                   // fixed cost of one step
  double step_ms_per_seq = 0.05;        // added per running sequence
  double step_ms_per_queued = 0.02;     // added per waiting request
  double prefill_ms_per_1k_tokens = 5;  // added per 1,000 prompt tokens admitted
  int64_t kv_tokens = 32768;            // KV cache: prompt + generated tokens of running sequences
  int max_running = 256;                // sequences in a batch at most (vLLM's max_num_seqs)
  bool preempt = false;                 // admit optimistically, preempt (recompute) on overflow
};

struct EngineStats {
  int64_t running = 0;
  int64_t queued = 0;
  int64_t kv_tokens_used = 0;  // prompt + generated tokens of the running sequences
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  uint64_t admitted = 0;  // admissions, re-admissions after preemption included
  uint64_t finished = 0;
  uint64_t prefill_tokens = 0;  // prompt tokens prefilled, recomputed ones included
  uint64_t decode_tokens = 0;   // tokens generated, lost ones included
};

class BatchingEngine {
 public:
  explicit BatchingEngine(EngineOptions options);

  // Queues sequence `id` (unique among those in the engine). A sequence that
  // could never fit in the cache is refused with kInvalidArgument, as vLLM
  // refuses a request longer than its context.
  absl::Status Add(uint64_t id, int64_t prompt_tokens, int64_t completion_tokens);

  // Schedules the next step (preemptions, admissions) and returns how long it
  // takes; zero when there is nothing to run. Every BeginStep that returns
  // more than zero is followed by one EndStep.
  absl::Duration BeginStep();

  // Every running sequence emits its token; returns the sequences that
  // finished, in admission order.
  std::vector<uint64_t> EndStep();

  bool idle() const { return running_.empty() && queue_.empty(); }
  EngineStats stats() const;
  const EngineOptions& options() const { return options_; }
  // Takes effect from the next step; a smaller cache is honoured by
  // admitting less (and, with preemption, by preempting).
  void set_options(const EngineOptions& options) { options_ = options; }

 private:
  struct Sequence {
    uint64_t id = 0;
    int64_t prompt = 0;
    int64_t completion = 0;  // tokens to generate (at least 1)
    int64_t generated = 0;
  };
  int64_t Size(const Sequence& s) const { return s.prompt + s.generated; }
  int64_t FullSize(const Sequence& s) const { return s.prompt + s.completion; }
  void Preempt();

  EngineOptions options_;
  std::deque<Sequence> queue_;     // FIFO; preempted sequences go back to the front
  std::vector<Sequence> running_;  // in admission order
  absl::flat_hash_set<uint64_t> ids_;
  int64_t used_ = 0;      // KV tokens held by the running sequences
  int64_t reserved_ = 0;  // their whole sizes (admission without preemption)
  bool in_step_ = false;
  EngineStats counters_;
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_BATCHING_ENGINE_H_
