#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/records.h"
#include "common/version.h"
#include "coordinator/scheduler_internal.h"

namespace medeval {
namespace {

constexpr size_t kMaxDeparted = 32;
constexpr absl::Duration kRateWindow = absl::Seconds(10);

}  // namespace

const char* RunPhaseName(RunPhase phase) {
  switch (phase) {
    case RunPhase::kRunning:
      return "running";
    case RunPhase::kMerging:
      return "finishing";
    case RunPhase::kDone:
      return "done";
    case RunPhase::kIncomplete:
      return "incomplete";
    case RunPhase::kMergeFailed:
      return "merge-failed";
    case RunPhase::kStopped:
      return "stopped";
  }
  return "unknown";
}

Scheduler::Scheduler(Options options, JournalWriter* journal)
    : options_(std::move(options)), journal_(journal) {
  // Lease ids are unique across restarts so a stale id never names a new lease.
  absl::BitGen gen;
  next_lease_id_ = absl::Uniform<uint64_t>(gen, 1, uint64_t{1} << 62);
  journal_->set_after_batch([this] { ApplyDurableBatch(); });
}

void Scheduler::ApplyDurableBatch() {
  std::vector<Durable> batch;
  batch.swap(durable_batch_);
  absl::MutexLock lock(&mu_);
  for (Durable& d : batch) OnDurable(std::move(d));
  for (auto& [worker_id, msg] : pending_acks_) {
    auto it = workers_.find(worker_id);
    if (it != workers_.end()) it->second->channel->Send(std::move(msg));
  }
  pending_acks_.clear();
}

Scheduler::~Scheduler() = default;

uint64_t Scheduler::QKey(const Run& run, uint32_t q) {
  return (static_cast<uint64_t>(run.num) << 32) | q;
}

absl::Status Scheduler::AddRun(LoadedRun loaded) {
  absl::MutexLock lock(&mu_);
  const std::string id = loaded.spec.run_id();
  if (runs_by_id_.contains(id))
    return absl::AlreadyExistsError(absl::StrCat("run ", id, " exists"));
  if (loaded.images == nullptr && loaded.suite != nullptr) {
    // A question whose images were not loaded would reach the model without them.
    for (const auto& ds : loaded.suite->datasets) {
      for (size_t i = 0; i < ds.size(); ++i) {
        if (!ds.images(i).empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat("run ", id, ": the images of ", ds.file.name, ":", ds.line(i),
                           " are not loaded; the run cannot be asked without them"));
        }
      }
    }
  }
  auto run = std::make_unique<Run>();
  run->num = static_cast<uint32_t>(runs_.size());
  run->spec = std::move(loaded.spec);
  run->suite = std::move(loaded.suite);
  run->images = std::move(loaded.images);
  run->journal = std::move(loaded.journal);
  run->output_dir = std::move(loaded.output_dir);
  uint32_t start = 0;
  for (const auto& ds : run->suite->datasets) {
    run->starts.push_back(start);
    start += static_cast<uint32_t>(ds.size());
  }
  const size_t n = start;
  run->state = std::move(loaded.state);
  run->offset = std::move(loaded.offset);
  if (run->state.size() != n || run->offset.size() != n) {
    return absl::InternalError(absl::StrCat("run ", id, ": state of ", run->state.size(),
                                            " questions for a suite of ", n));
  }
  run->holders.assign(n, 0);
  run->failure_errors = std::move(loaded.failure_errors);
  run->retries = loaded.retries;
  run->more_attempts = loaded.more_attempts;
  run->truncated = loaded.truncated;
  run->tokens = loaded.tokens;
  run->finished = loaded.finished;
  for (uint32_t q = 0; q < n; ++q) {
    switch (run->state[q]) {
      case kAnswered:
        ++run->answered;
        break;
      case kFailed:
        ++run->failed;
        break;
      default:
        run->state[q] = kPending;
        ++run->pending;
        run->queue.push_back(q);
    }
  }
  Run* r = run.get();
  if (!models_[r->spec.model()].limited()) SetLimitsLocked(r->spec.model(), r->spec.limits());
  runs_by_id_[id] = r;
  if (!r->spec.idempotency_key().empty()) runs_by_key_[r->spec.idempotency_key()] = r;
  runs_.push_back(std::move(run));
  if (r->pending > 0) {
    active_[r->spec.model()].push_back(r);
    if (options_.startup_grace > absl::ZeroDuration() && r->answered + r->failed > 0) {
      // A recovered run: workers may still hold its questions.
      grace_until_ = options_.clock->Now() + options_.startup_grace;
      grace_over_ = false;
    }
    DispatchModel(r->spec.model());
  } else if (loaded.outputs_ready) {
    r->phase = r->failed > 0 ? RunPhase::kIncomplete : RunPhase::kDone;
  } else {
    MaybeComplete(r);
  }
  return absl::OkStatus();
}

std::string Scheduler::FindRunByKey(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_key_.find(key);
  return it == runs_by_key_.end() ? "" : it->second->spec.run_id();
}

bool Scheduler::HasRun(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  return runs_by_id_.contains(run_id);
}

void Scheduler::SetState(Run* run, uint32_t q, uint8_t state) {
  uint8_t old = run->state[q];
  if (old == state) return;
  if (old == kPending) --run->pending;
  if (old == kLeased) --run->leased;
  if (state == kPending) ++run->pending;
  if (state == kLeased) ++run->leased;
  run->state[q] = state;
}

void Scheduler::Requeue(Run* run, uint32_t q) {
  SetState(run, q, kPending);
  run->queue.push_front(q);
  if (run->phase == RunPhase::kStopped) return;  // asked again after a restart
  auto& active = active_[run->spec.model()];
  if (std::find(active.begin(), active.end(), run) == active.end()) active.push_back(run);
}

absl::StatusOr<uint32_t> Scheduler::Reopen(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_id_.find(run_id);
  if (it == runs_by_id_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  Run* run = it->second;
  if (run->phase == RunPhase::kMerging) {
    // Nothing to reopen: the merge under way writes this run's outputs.
    if (run->failed == 0) return 0;
    return absl::UnavailableError(absl::StrCat("run ", run_id, " is writing its outputs; retry"));
  }
  if (run->phase == RunPhase::kStopped) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_id, " stopped: ", run->error, " (restart the coordinator to continue it)"));
  }
  uint32_t reopened = 0;
  for (uint32_t q = 0; q < run->total(); ++q) {
    if (run->state[q] != kFailed) continue;
    Requeue(run, q);
    --run->failed;
    ++reopened;
  }
  run->failure_errors.clear();
  if (reopened == 0) {
    if (run->phase == RunPhase::kMergeFailed) {
      run->phase = RunPhase::kRunning;
      MaybeComplete(run);
    }
    return 0;
  }
  v1::JournalEntry entry;
  entry.set_reopen(true);
  // Replay applies the reopen in order; the questions are re-asked now.
  journal_->Append(run->journal, entry.SerializeAsString(), [](absl::StatusOr<uint64_t> st) {
    if (!st.ok()) MEDEVAL_LOG(ERROR) << "journal reopen: " << st.status().message();
  });
  run->phase = RunPhase::kRunning;
  run->finished = absl::InfinitePast();
  run->error.clear();
  DispatchModel(run->spec.model());
  return reopened;
}

absl::StatusOr<RunSnapshot> Scheduler::Snapshot(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_id_.find(run_id);
  if (it == runs_by_id_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  const Run& run = *it->second;
  RunSnapshot s;
  s.spec = run.spec;
  s.suite = run.suite;
  s.journal = run.journal;
  s.output_dir = run.output_dir;
  s.state = run.state;
  s.offset = run.offset;
  s.duplicates = run.duplicates;
  s.more_attempts = run.more_attempts;
  s.finished = run.finished;
  return s;
}

void Scheduler::FinishMerge(const std::string& run_id, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_id_.find(run_id);
  if (it == runs_by_id_.end()) return;
  Run* run = it->second;
  if (run->phase != RunPhase::kMerging) return;  // reopened meanwhile
  if (!status.ok()) {
    run->phase = RunPhase::kMergeFailed;
    run->error = std::string(status.message());
    MEDEVAL_LOG(ERROR) << "run " << run_id << ": writing outputs failed: " << status.message();
    return;
  }
  run->phase = run->failed > 0 ? RunPhase::kIncomplete : RunPhase::kDone;
  MEDEVAL_LOG(INFO) << "run " << run_id << " (" << run->spec.model() << ") "
                    << RunPhaseName(run->phase) << ": " << run->answered << " answered, "
                    << run->failed << " failed";
}

absl::StatusOr<Scheduler::OutputInfo> Scheduler::Output(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_id_.find(run_id);
  if (it == runs_by_id_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id));
  return OutputInfo{it->second->phase, it->second->output_dir, it->second->spec.model()};
}

bool Scheduler::InGrace() {
  if (grace_over_) return false;
  if (options_.clock->Now() < grace_until_) return true;
  grace_over_ = true;
  return false;
}

absl::StatusOr<std::string> Scheduler::Connect(const v1::Hello& hello, WorkerChannel* channel) {
  v1::WorkerMessage first;
  *first.mutable_hello() = hello;
  return Connect(first, channel);
}

bool Scheduler::Reclaim(Worker* w, const v1::QuestionKey& key, v1::CoordinatorMessage* msg) {
  auto rit = runs_by_id_.find(key.run_id());
  if (rit == runs_by_id_.end()) return false;
  Run* run = rit->second;
  if (key.index() >= run->total() || run->state[key.index()] != kPending) return false;
  if (run->spec.model() != w->hello.model()) return false;
  AddLease(run, key.index(), w, /*backup=*/false, msg);
  return true;
}

absl::StatusOr<std::string> Scheduler::Connect(const v1::WorkerMessage& first,
                                               WorkerChannel* channel) {
  const v1::Hello& hello = first.hello();
  if (hello.model().empty()) return absl::InvalidArgumentError("hello: model is required");
  if (hello.max_inflight() == 0)
    return absl::InvalidArgumentError("hello: max_inflight must be > 0");
  absl::MutexLock lock(&mu_);
  std::string id = hello.worker_name().empty() ? "worker" : hello.worker_name();
  bool replaced = false;
  if (auto it = workers_.find(id); it != workers_.end()) {
    Worker* old = it->second.get();
    if (hello.instance_id().empty() || old->hello.instance_id() != hello.instance_id()) {
      // Another process with the same name: replacing it would have the two
      // replace each other in a loop.
      return absl::AlreadyExistsError(
          absl::StrCat("a worker named '", id, "' is already connected (model ", old->hello.model(),
                       "); give each worker its own --name"));
    }
    // The same process reconnecting before its old stream was noticed as gone.
    old->channel->Close(absl::AbortedError("replaced by a new connection of the same worker"));
    RemoveWorker(old, "replaced by a new connection", /*dispatch=*/false);
    replaced = true;
  }
  auto w = std::make_unique<Worker>();
  w->id = id;
  w->hello = hello;
  w->channel = channel;
  w->connected = w->last_seen = options_.clock->Now();
  w->endpoint = hello.endpoint_state();
  Worker* worker = w.get();
  workers_[id] = std::move(w);

  v1::CoordinatorMessage msg;
  msg.mutable_welcome()->set_worker_id(id);
  msg.mutable_welcome()->set_heartbeat_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  msg.mutable_welcome()->set_coordinator_version(kVersion);
  // Questions the worker still works on from before a reconnect (or our
  // restart) stay with it if nobody else has them, up to what it may have
  // in flight; answers it sends again with the hello find their lease too.
  uint32_t reclaimed = 0;
  uint32_t refused = 0;
  for (const v1::QuestionKey& key : hello.holding()) {
    if (reclaimed >= hello.max_inflight()) {
      ++refused;
      continue;
    }
    if (Reclaim(worker, key, &msg)) ++reclaimed;
  }
  for (const v1::Result& r : first.results()) {
    if (Reclaim(worker, r.key(), &msg)) ++reclaimed;
  }
  if (first.has_batch_report()) SetBatches(worker, first.batch_report());
  if (refused > 0) {
    MEDEVAL_LOG(WARNING) << "worker " << id << " claims " << hello.holding_size()
                         << " questions in flight with " << hello.max_inflight() << " allowed; "
                         << refused << " claims ignored";
  }
  if (auto mit = models_.find(hello.model()); mit != models_.end()) {
    const absl::Duration left = mit->second.paused_until - options_.clock->Now();
    if (left > absl::ZeroDuration()) {
      msg.set_pause_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(left)));
    }
  }
  // The worker already runs these; it needs no lease messages for them.
  msg.clear_leases();
  msg.clear_runs();
  worker->runs_sent.clear();
  channel->Send(std::move(msg));
  JoinAutoConcurrency(worker);
  MEDEVAL_LOG(INFO) << "worker " << id << " connected: model " << hello.model() << ", "
                    << (hello.auto_concurrency() ? "auto concurrency up to " : "")
                    << hello.max_inflight() << " in flight"
                    << (reclaimed > 0 ? absl::StrCat(", reclaimed ", reclaimed, " questions") : "");
  if (replaced) {
    DispatchModel(hello.model());
  } else {
    Dispatch(worker);
  }
  return id;
}

void Scheduler::Disconnect(const std::string& worker_id, WorkerChannel* channel) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second->channel != channel) return;
  RemoveWorker(it->second.get(), "disconnected");
}

void Scheduler::RemoveWorker(Worker* w, const std::string& why, bool dispatch) {
  const std::string model = w->hello.model();
  std::vector<uint64_t> ids(w->leases.begin(), w->leases.end());
  for (uint64_t id : ids) DropLease(id, /*requeue=*/true);
  // Copies it was told to cancel will not report their requests now.
  std::vector<Run*> waiting;
  for (const auto& [id, copy] : w->cancelled) {
    Run* run = runs_[copy.first].get();
    --run->awaiting_copies;
    waiting.push_back(run);
  }
  w->cancelled.clear();
  if (!ids.empty() || !w->error.empty()) {
    MEDEVAL_LOG(INFO) << "worker " << w->id << " " << why << "; " << ids.size()
                      << " leases back in the queue";
  }
  v1::WorkerStatus st;
  FillWorkerStatus(*w, &st);
  departed_.erase(std::remove_if(departed_.begin(), departed_.end(),
                                 [&](const v1::WorkerStatus& d) { return d.worker_id() == w->id; }),
                  departed_.end());
  departed_.push_back(st);
  if (departed_.size() > kMaxDeparted) departed_.pop_front();
  workers_.erase(w->id);
  for (Run* run : waiting) MaybeComplete(run);
  if (dispatch) DispatchModel(model);
}

void Scheduler::AddLease(Run* run, uint32_t q, Worker* w, bool backup,
                         v1::CoordinatorMessage* msg) {
  const uint64_t id = next_lease_id_++;
  const absl::Time now = options_.clock->Now();
  leases_[id] = Lease{run, q, w, now, backup};
  leases_by_question_[QKey(*run, q)].push_back(id);
  w->leases.insert(id);
  SetState(run, q, kLeased);
  ++run->holders[q];
  ++counters_.leases;
  if (backup) ++counters_.backups;
  if (w->runs_sent.insert(run->num).second) {
    v1::RunInfo* info = msg->add_runs();
    info->set_run_id(run->spec.run_id());
    info->set_model(run->spec.model());
    *info->mutable_params() = run->spec.params();
    info->set_rate_limited(models_[run->spec.model()].limited());
  }
  const size_t d = run->Dataset(q);
  const medeval::Dataset& ds = run->suite->datasets[d];
  const size_t local = q - run->starts[d];
  v1::Lease* l = msg->add_leases();
  l->set_lease_id(id);
  l->mutable_key()->set_run_id(run->spec.run_id());
  l->mutable_key()->set_index(q);
  l->set_dataset(ds.file.name);
  l->set_line(ds.line(local));
  absl::string_view text = ds.question(local);
  l->set_question(text.data(), text.size());
  for (absl::string_view img : ds.images(local)) {
    for (const ImageBlob& b : run->images->Parts(img)) {
      // No bytes under the lock: the stream sends them once (ImageStore).
      v1::ImagePart* part = l->add_images();
      part->set_path(b.name);
      part->set_mime_type(b.mime);
      part->set_sha256(b.sha256);
    }
  }
  l->set_backup(backup);
}

void Scheduler::DropLease(uint64_t lease_id, bool requeue) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  Lease lease = it->second;
  leases_.erase(it);
  lease.worker->leases.erase(lease_id);
  const uint64_t key = QKey(*lease.run, lease.q);
  auto qit = leases_by_question_.find(key);
  if (qit != leases_by_question_.end()) {
    auto& ids = qit->second;
    ids.erase(std::remove(ids.begin(), ids.end(), lease_id), ids.end());
    if (ids.empty()) leases_by_question_.erase(qit);
  }
  Run* run = lease.run;
  --run->holders[lease.q];
  if (requeue && run->holders[lease.q] == 0 && run->state[lease.q] == kLeased) {
    Requeue(run, lease.q);
  }
}

void Scheduler::DispatchModel(const std::string& model) {
  if (InGrace()) return;
  for (auto& [id, w] : workers_) {
    if (w->hello.model() == model) Dispatch(w.get());
  }
}

void Scheduler::Dispatch(Worker* w) {
  if (!w->usable() || InGrace()) return;
  if (w->leases.size() >= w->capacity()) return;
  auto ait = active_.find(w->hello.model());
  if (ait == active_.end()) return;
  std::vector<Run*>& runs = ait->second;
  size_t& rr = round_robin_[w->hello.model()];
  v1::CoordinatorMessage msg;
  size_t free = w->capacity() - w->leases.size();
  // One question per run in turn, so concurrent runs of a model share workers.
  size_t idle_rounds = 0;
  while (free > 0 && !runs.empty() && idle_rounds < runs.size()) {
    rr %= runs.size();
    Run* run = runs[rr];
    bool took = false;
    while (!run->queue.empty()) {
      uint32_t q = run->queue.front();
      run->queue.pop_front();
      if (run->state[q] != kPending) continue;  // stale entry
      AddLease(run, q, w, /*backup=*/false, &msg);
      --free;
      took = true;
      break;
    }
    if (run->queue.empty() && run->pending == 0) {
      // Nothing left to hand out; the run stays tracked through its leases.
      runs.erase(runs.begin() + static_cast<long>(rr));
      idle_rounds = 0;
      continue;
    }
    ++rr;
    idle_rounds = took ? 0 : idle_rounds + 1;
  }
  if (msg.leases_size() > 0) w->channel->Send(std::move(msg));
}

void Scheduler::OnMessage(const std::string& worker_id, WorkerChannel* channel,
                          v1::WorkerMessage* m) {
  const v1::WorkerMessage& msg = *m;
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second->channel != channel) return;
  Worker* w = it->second.get();
  w->last_seen = options_.clock->Now();
  for (v1::Result& r : *m->mutable_results()) HandleResult(w, &r);
  for (uint64_t id : msg.released()) {
    if (w->leases.contains(id)) DropLease(id, /*requeue=*/true);
  }
  for (const v1::CancelledCopy& c : msg.cancelled()) OnCancelled(w, c);
  if (msg.has_error()) {
    w->error = msg.error().message();
    w->draining = true;
    MEDEVAL_LOG(ERROR) << "worker " << w->id << " cannot serve: " << w->error;
  }
  if (msg.draining() && !w->draining) {
    w->draining = true;
    MEDEVAL_LOG(INFO) << "worker " << w->id << " is draining";
  }
  if (msg.has_want_grants()) {
    w->want_grants = msg.want_grants();
    w->grants_seen = msg.grants_seen();
  }
  if (msg.has_load()) FeedConcurrency(w, msg.load());
  if (msg.pause_model_ms() > 0) PauseModel(w, absl::Milliseconds(msg.pause_model_ms()));
  if (msg.has_endpoint_state()) SetEndpointState(w, msg.endpoint_state());
  if (msg.has_batch_report()) SetBatches(w, msg.batch_report());
  if (msg.has_accepting() && w->paused == msg.accepting()) {
    w->paused = !msg.accepting();
    MEDEVAL_LOG(INFO) << "worker " << w->id
                      << (w->paused ? " paused (model server restarting)" : " takes work again");
  }
  if (!msg.released().empty()) DispatchModel(w->hello.model());
  Dispatch(w);
  if (msg.has_want_grants() && w->grant_demand() > 0) Grant(w->hello.model());
}

void Scheduler::HandleResult(Worker* w, v1::Result* result) {
  CapAnswer(result);
  const v1::Result& r = *result;
  ++counters_.results;
  FeedConcurrency(w, r);
  auto rit = runs_by_id_.find(r.key().run_id());
  v1::CoordinatorMessage ack;
  *ack.add_acks() = r.key();
  if (rit == runs_by_id_.end()) {
    w->channel->Send(std::move(ack));  // an unknown run: nothing to keep
    return;
  }
  Run* run = rit->second;
  if (run->phase == RunPhase::kStopped) return;  // cannot be saved: not acknowledged
  const uint32_t q = r.key().index();
  if (q >= run->total()) {
    MEDEVAL_LOG(WARNING) << "worker " << w->id << " answered question " << q << " of run "
                         << run->spec.run_id() << ", which has " << run->total();
    w->channel->Send(std::move(ack));
    return;
  }
  // Only the holder of a lease on this stream may settle the question; a
  // late copy (cancelled, or after a reconnect) of a settled one is a
  // duplicate, anything else is refused and acknowledged so the worker
  // forgets it.
  const uint64_t lease_id = LeaseOf(w, run, q, r.lease_id());
  const uint8_t st = run->state[q];
  if (lease_id == 0 && st != kAnswered && st != kFailed) {
    ++counters_.unleased_results;
    MEDEVAL_LOG(WARNING) << "worker " << w->id << " sent a result for " << run->Describe(q)
                         << " of run " << run->spec.run_id()
                         << " without holding its lease; ignored";
    w->channel->Send(std::move(ack));
    return;
  }
  if (lease_id != 0) {
    double secs = absl::ToDoubleSeconds(options_.clock->Now() - leases_[lease_id].issued);
    run->lease_secs_ewma =
        run->lease_secs_ewma == 0 ? secs : 0.9 * run->lease_secs_ewma + 0.1 * secs;
    DropLease(lease_id, /*requeue=*/false);
  }
  const bool failed = r.has_failure();
  const int32_t sent = failed ? r.failure().attempts() : r.answer().attempts();
  if (st == kAnswered || st == kFailed) {
    ++run->duplicates;
    ++counters_.duplicates;
    // Not kept, but the server answered it: its requests count.
    if (sent > 0) AddMoreAttempts(run, q, static_cast<uint32_t>(sent));
    w->channel->Send(std::move(ack));
    return;
  }
  if (failed && run->holders[q] > 0) {
    // Another copy is still running; let it decide. Only its requests count.
    if (sent > 0) AddMoreAttempts(run, q, static_cast<uint32_t>(sent));
    w->channel->Send(std::move(ack));
    return;
  }
  // First result wins. Cancel the other copies.
  auto qit = leases_by_question_.find(QKey(*run, q));
  if (qit != leases_by_question_.end()) {
    std::vector<uint64_t> others(qit->second.begin(), qit->second.end());
    for (uint64_t id : others) CancelCopy(id, /*requeue=*/false);
  }
  SetState(run, q, failed ? kFailed : kAnswered);
  ++run->unsynced;
  ++w->answered;
  const v1::AnswerRecord& rec = failed ? r.failure() : r.answer();
  if (rec.attempts() > 1) run->retries += static_cast<uint64_t>(rec.attempts() - 1);
  if (Model& m = models_[run->spec.model()]; m.tokens.enabled() && rec.total_tokens() > 0) {
    // Grants debited an estimate; settle with what the answer used.
    const double used = static_cast<double>(rec.total_tokens());
    m.tokens.Take(used - m.tokens_per_request);
    m.tokens_per_request =
        m.tokens_per_request == 0 ? used : 0.9 * m.tokens_per_request + 0.1 * used;
  }
  if (failed) run->failure_errors[q] = rec.last_error();
  v1::JournalEntry entry;
  entry.set_index(q);
  v1::AnswerRecord* kept = failed ? entry.mutable_failure() : entry.mutable_answer();
  *kept = std::move(failed ? *result->mutable_failure() : *result->mutable_answer());
  // Who answered is what the stream says, whatever the record claims.
  kept->set_worker(w->id);
  const uint32_t run_num = run->num;
  const bool truncated = !failed && IsTruncated(entry.answer());
  const TokenTally tokens = TokensOf(*kept);
  std::string worker_id = w->id;
  journal_->Append(run->journal, entry.SerializeAsString(),
                   [this, run_num, q, failed, truncated, tokens,
                    worker_id = std::move(worker_id)](absl::StatusOr<uint64_t> offset) {
                     // Writer thread: collected, applied once per batch.
                     durable_batch_.push_back({run_num, q, failed, worker_id, std::move(offset),
                                               truncated, false, tokens});
                   });
}

uint64_t Scheduler::LeaseOf(const Worker* w, const Run* run, uint32_t q, uint64_t lease_id) {
  auto lit = leases_.find(lease_id);
  if (lit != leases_.end() && lit->second.worker == w && lit->second.run == run &&
      lit->second.q == q) {
    return lease_id;
  }
  // A reconnected worker answers under the lease id of its old stream; the
  // question was leased to this stream again when it said it still held it.
  auto qit = leases_by_question_.find(QKey(*run, q));
  if (qit == leases_by_question_.end()) return 0;
  for (uint64_t id : qit->second) {
    if (leases_.at(id).worker == w) return id;
  }
  return 0;
}

void Scheduler::OnDurable(Durable d) {
  const uint32_t q = d.q;
  const bool failed = d.failed;
  const std::string& worker_id = d.worker_id;
  absl::StatusOr<uint64_t>& offset = d.offset;
  Run* run = runs_[d.run_num].get();
  --run->unsynced;
  if (d.more_attempts) {
    if (!offset.ok()) {
      StopRun(run, offset.status());
    } else {
      MaybeComplete(run);
    }
    return;
  }
  if (!offset.ok()) {
    // Not durable, and the journal takes no more records: asking again would
    // only pay for answers that cannot be kept. Stop the run loudly.
    SetState(run, q, kPending);
    run->queue.push_front(q);
    run->failure_errors.erase(q);
    StopRun(run, offset.status());
    return;
  }
  run->offset[q] = *offset;
  run->tokens.Add(d.tokens);
  if (failed) {
    ++run->failed;
  } else {
    ++run->answered;
    if (d.truncated) ++run->truncated;
  }
  if (workers_.contains(worker_id)) {
    v1::QuestionKey* key = pending_acks_[worker_id].add_acks();
    key->set_run_id(run->spec.run_id());
    key->set_index(q);
  }
  MaybeComplete(run);
}

void Scheduler::CancelCopy(uint64_t id, bool requeue) {
  const Lease& lease = leases_.at(id);
  Worker* holder = lease.worker;
  holder->cancelled[id] = {lease.run->num, lease.q};
  ++lease.run->awaiting_copies;
  v1::CoordinatorMessage cancel;
  cancel.add_cancels(id);
  holder->channel->Send(std::move(cancel));
  DropLease(id, requeue);
}

void Scheduler::OnCancelled(Worker* w, const v1::CancelledCopy& c) {
  auto it = w->cancelled.find(c.lease_id());
  if (it == w->cancelled.end()) return;  // not cancelled on this stream
  const auto [run_num, q] = it->second;
  w->cancelled.erase(it);
  Run* run = runs_[run_num].get();
  --run->awaiting_copies;
  if (c.attempts_sent() > 0) AddMoreAttempts(run, q, c.attempts_sent());
  MaybeComplete(run);
}

void Scheduler::AddMoreAttempts(Run* run, uint32_t q, uint32_t n) {
  if (run->phase == RunPhase::kStopped) return;
  run->more_attempts[q] += n;
  v1::JournalEntry entry;
  entry.set_index(q);
  entry.set_more_attempts(n);
  ++run->unsynced;
  const uint32_t run_num = run->num;
  journal_->Append(run->journal, entry.SerializeAsString(),
                   [this, run_num, q](absl::StatusOr<uint64_t> offset) {
                     Durable d{run_num, q, false, "", std::move(offset)};
                     d.more_attempts = true;
                     durable_batch_.push_back(std::move(d));
                   });
}

void Scheduler::MaybeComplete(Run* run) {
  if (run->phase != RunPhase::kRunning) return;
  if (run->answered + run->failed != run->total() || run->unsynced > 0 ||
      run->awaiting_copies > 0) {
    return;
  }
  run->phase = RunPhase::kMerging;
  if (run->finished == absl::InfinitePast()) run->finished = options_.clock->Now();
  auto& active = active_[run->spec.model()];
  active.erase(std::remove(active.begin(), active.end(), run), active.end());
  if (options_.on_run_complete) options_.on_run_complete(run->spec.run_id());
}

void Scheduler::Tick() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = options_.clock->Now();
  std::vector<Worker*> silent;
  for (auto& [id, w] : workers_) {
    if (now - w->last_seen > options_.heartbeat_timeout) silent.push_back(w.get());
  }
  for (Worker* w : silent) {
    const std::string why = absl::StrCat(
        "sent nothing for ", absl::FormatDuration(now - w->last_seen), "; presumed gone");
    w->channel->Close(absl::UnavailableError(why));
    ++counters_.expired_workers;
    RemoveWorker(w, why);
  }
  if (!grace_over_ && !InGrace()) {
    for (auto& [id, w] : workers_) Dispatch(w.get());
  }
  TickConcurrency(now);
  if (options_.backups) Backups(now);
  for (auto& [name, model] : models_) {
    if (model.limited()) Grant(name);
  }
  for (auto& run : runs_) {
    if (run->phase != RunPhase::kRunning) continue;
    run->samples.emplace_back(now, run->answered + run->failed);
    while (run->samples.size() > 2 && now - run->samples[1].first > kRateWindow) {
      run->samples.pop_front();
    }
  }
}

void Scheduler::Backups(absl::Time now) {
  if (InGrace()) return;
  // Idle capacity per model: workers with free credits.
  absl::flat_hash_map<std::string, std::vector<Worker*>> idle;
  for (auto& [id, w] : workers_) {
    if (!w->usable() || w->leases.size() >= w->capacity()) continue;
    // A paused model's questions wait for the pause, not for a second copy.
    if (ModelPaused(w->hello.model(), now)) continue;
    idle[w->hello.model()].push_back(w.get());
  }
  if (idle.empty()) return;
  // Stragglers: the oldest single-copy leases of runs with nothing left to hand out.
  std::vector<std::pair<absl::Time, uint64_t>> stragglers;
  for (const auto& [id, lease] : leases_) {
    const Run* run = lease.run;
    if (lease.backup || run->pending > 0 || run->holders[lease.q] != 1) continue;
    if (!idle.contains(run->spec.model())) continue;
    absl::Duration threshold = std::max(
        options_.backup_min_age, absl::Seconds(options_.backup_factor * run->lease_secs_ewma));
    if (now - lease.issued >= threshold) stragglers.emplace_back(lease.issued, id);
  }
  std::sort(stragglers.begin(), stragglers.end());
  absl::flat_hash_map<Worker*, v1::CoordinatorMessage> out;
  for (const auto& [issued, id] : stragglers) {
    auto lit = leases_.find(id);
    if (lit == leases_.end()) continue;
    Lease lease = lit->second;
    auto& candidates = idle[lease.run->spec.model()];
    for (Worker* w : candidates) {
      if (w == lease.worker || w->leases.size() >= w->capacity()) continue;
      AddLease(lease.run, lease.q, w, /*backup=*/true, &out[w]);
      MEDEVAL_LOG(INFO) << "backup copy of " << lease.run->Describe(lease.q) << " to worker "
                        << w->id << " (first copy on " << lease.worker->id << " for "
                        << absl::FormatDuration(absl::Trunc(now - issued, absl::Seconds(1))) << ")";
      break;
    }
  }
  for (auto& [w, msg] : out) w->channel->Send(std::move(msg));
}

}  // namespace medeval
