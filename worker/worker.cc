#include "worker/worker.h"

#include <unistd.h>

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/version.h"
#include "worker/worker_stream.h"

namespace medeval {
namespace {

std::string KeyString(const v1::QuestionKey& key) {
  return absl::StrCat(key.run_id(), "#", key.index());
}

std::string DefaultName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "worker", "-", ::getpid());
}

}  // namespace

void SetConcurrency(int concurrency, int max_concurrency, WorkerOptions* o) {
  o->auto_concurrency = concurrency == kAutoConcurrency;
  o->concurrency = o->auto_concurrency ? max_concurrency : concurrency;
}

Worker::Worker(WorkerOptions options)
    : options_([&] {
        if (options.name.empty()) options.name = DefaultName();
        options.backend.worker_name = options.name;
        return std::move(options);
      }()),
      instance_id_([] {
        absl::BitGen gen;
        return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16),
                            absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
      }()),
      http_(HttpClient::Options{options_.concurrency + 4, absl::Seconds(10)}),
      backend_(&http_, options_.backend) {
  if (options_.prefetch < 0) options_.prefetch = std::max(2, options_.concurrency / 4);
  // Auto: a start until the coordinator sends this worker's share.
  target_ = limit_ =
      options_.auto_concurrency ? std::min(16, options_.concurrency) : options_.concurrency;
  BackendHooks hooks;
  hooks.on_grant_demand = [this] { OnGrantDemand(); };
  hooks.on_rate_limited = [this](absl::Duration d) { OnRateLimited(d); };
  hooks.on_attempt = [this](bool throttled, bool timed_out) { OnAttempt(throttled, timed_out); };
  hooks.on_attempt_done = options_.on_attempt_done;
  hooks.on_endpoint_down = [this](const std::string& reason) { OnEndpointDown(reason); };
  backend_.SetHooks(std::move(hooks));
  if (options_.batch.enabled) {
    batch_ = std::make_unique<BatchRunner>(
        &http_, &backend_, options_.backend, options_.batch, options_.model,
        [this](std::vector<v1::BatchState> batches) { OnBatchesChanged(std::move(batches)); });
  }
}

int Worker::CancelAsk(uint64_t ask_id) {
  if (batch_ != nullptr) {
    // A batch line is billed with its batch, whatever happens to it.
    batch_->Cancel(ask_id);
    return 0;
  }
  return backend_.Cancel(ask_id);
}

bool Worker::AskAtServerLocked(uint64_t ask_id) {
  return batch_ != nullptr || backend_.Sending(ask_id);
}

void Worker::SetEndpoint(const Endpoint& endpoint) {
  backend_.SetEndpoint(endpoint);
  if (batch_ != nullptr) batch_->SetEndpoint(endpoint);
  absl::MutexLock lock(&mu_);
  options_.backend.endpoint = endpoint;
}

void Worker::SetBatchCancelOnExit(bool cancel) {
  if (batch_ != nullptr) batch_->SetCancelOnExit(cancel);
}

void Worker::OnBatchesChanged(std::vector<v1::BatchState> batches) {
  absl::MutexLock lock(&mu_);
  batch_report_.clear_batches();
  for (v1::BatchState& b : batches) *batch_report_.add_batches() = std::move(b);
  *outbox_.mutable_batch_report() = batch_report_;
  ScheduleFlushLocked();
}

void Worker::OnGrantDemand() {
  // May run under mu_ (from Ask): only schedule the report here.
  if (!grant_report_pending_.exchange(true)) {
    http_.After(options_.result_linger, [this] { ReportGrants(); });
  }
}

void Worker::ReportGrants() {
  grant_report_pending_ = false;
  ChatBackend::GrantState g = backend_.grant_state();
  absl::MutexLock lock(&mu_);
  outbox_.set_want_grants(g.want);
  outbox_.set_grants_seen(g.seen);
  FlushOutboxLocked();
}

void Worker::OnRateLimited(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  const uint32_t ms = static_cast<uint32_t>(absl::ToInt64Milliseconds(d));
  outbox_.set_pause_model_ms(std::max(outbox_.pause_model_ms(), ms));
  ScheduleFlushLocked();
}

void Worker::OnAttempt(bool throttled, bool timed_out) {
  if (options_.auto_concurrency) {
    // The coordinator's controller decides, from every worker of the model.
    if (!throttled && !timed_out) return;
    absl::MutexLock lock(&mu_);
    v1::LoadSignals* load = outbox_.mutable_load();
    load->set_rate_limited(load->rate_limited() + (throttled ? 1 : 0));
    load->set_timed_out(load->timed_out() + (timed_out ? 1 : 0));
    ScheduleFlushLocked();
    return;
  }
  if (!options_.adaptive_concurrency) return;
  absl::MutexLock lock(&mu_);
  if (throttled) {
    if (limit_ > 1) {
      limit_ = std::max(1, limit_ / 2);
      MEDEVAL_LOG(DEBUG) << "429: " << limit_ << " requests in flight from now on";
      if (!logged_backoff_) {
        MEDEVAL_LOG(INFO) << "429: " << limit_ << " requests in flight from now on (adaptive "
                          << "concurrency; further changes are logged at debug level)";
        logged_backoff_ = true;
      }
    }
    ok_streak_ = 0;
  } else if (++ok_streak_ >= limit_ && limit_ < target_) {
    ok_streak_ = 0;
    ++limit_;
    StartQueuedLocked();
  }
}

Worker::~Worker() { Stop(); }

absl::Status Worker::Start() {
  if (options_.model.empty()) return absl::InvalidArgumentError("the worker needs --model");
  if (options_.concurrency < 1) return absl::InvalidArgumentError("--concurrency must be >= 1");
  auto channel = MakeChannel(options_.coordinator, options_.security);
  if (!channel.ok()) return channel.status();
  stub_ = v1::Coordinator::NewStub(*channel);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

v1::WorkerMessage Worker::HelloLocked() {
  v1::WorkerMessage msg;
  v1::Hello* h = msg.mutable_hello();
  h->set_worker_name(options_.name);
  h->set_model(options_.model);
  h->set_max_inflight(static_cast<uint32_t>(options_.concurrency));
  h->set_auto_concurrency(options_.auto_concurrency);
  h->set_prefetch(static_cast<uint32_t>(options_.prefetch));
  h->set_endpoint(backend_.public_endpoint());
  h->set_version(kVersion);
  h->set_instance_id(instance_id_);
  for (const auto& [id, f] : inflight_) *h->add_holding() = f.key;
  if (endpoint_state_.down()) *h->mutable_endpoint_state() = endpoint_state_;
  // Answers the coordinator may not have journaled: sent with the hello, so
  // they find their questions still leased to this worker.
  for (const auto& [k, r] : unacked_) *msg.add_results() = r;
  if (draining_) msg.set_draining(true);
  if (paused_) msg.set_accepting(false);
  if (batch_ != nullptr) *msg.mutable_batch_report() = batch_report_;
  return msg;
}

void Worker::SendLocked(const v1::WorkerMessage& msg) {
  if (stream_ != nullptr) stream_->Send(msg);
}

void Worker::CloseSendLocked() {
  if (stream_ != nullptr) stream_->CloseSend();
}

void Worker::Loop() {
  absl::BitGen rng;
  absl::Duration backoff = options_.reconnect_min;
  bool ever_welcomed = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      stream_done_ = false;
      welcomed_ = false;
      images_.clear();  // a new stream sends its images again
      stream_ = new Stream(this, stub_.get(), options_.security, HelloLocked());
    }
    grpc::Status status;
    bool was_welcomed;
    {
      absl::MutexLock lock(&mu_);
      // The condition variable wakes for every lease and answer: heartbeat
      // only once the interval (which the welcome may change) has passed.
      absl::Time last_heartbeat = absl::Now();
      while (!stream_done_) {
        cv_.WaitWithDeadline(&mu_, last_heartbeat + heartbeat_interval_);
        if (failing_) MaybeFinishFailingLocked(absl::Now() > fail_deadline_);
        if (stream_done_ || absl::Now() < last_heartbeat + heartbeat_interval_) continue;
        last_heartbeat = absl::Now();
        if (welcomed_) {
          v1::WorkerMessage hb;
          hb.mutable_heartbeat()->set_inflight(static_cast<uint32_t>(inflight_.size()));
          hb.mutable_heartbeat()->set_queued(static_cast<uint32_t>(queued_.size()));
          SendLocked(hb);
        }
      }
      status = stream_status_;
      was_welcomed = welcomed_;
      // Queued (unstarted) leases went back to the queue with the stream.
      queued_.clear();
      stats_.connected = false;
      MaybeFinishFailingLocked(absl::Now() > fail_deadline_);
      if (stopping_) break;
      const auto code = status.error_code();
      if (code == grpc::StatusCode::UNAUTHENTICATED ||
          code == grpc::StatusCode::PERMISSION_DENIED ||
          code == grpc::StatusCode::INVALID_ARGUMENT) {
        fatal_ = absl::FailedPreconditionError(
            absl::StrCat("the coordinator refused this worker: ", status.error_message()));
        MEDEVAL_LOG(ERROR) << fatal_.message();
        break;
      }
      ever_welcomed = ever_welcomed || was_welcomed;
      // A TLS mismatch at the first connection is the worker's settings (or
      // the coordinator's certificate): retrying would only hide it. Later,
      // a coordinator that comes back with a fixed certificate is waited for.
      if (const std::string tls = TlsSetupProblem(status.error_message(), options_.security);
          !tls.empty() && !ever_welcomed) {
        fatal_ = absl::FailedPreconditionError(
            absl::StrCat("cannot talk to the coordinator at ", options_.coordinator, ": ", tls));
        MEDEVAL_LOG(ERROR) << fatal_.message();
        break;
      }
      if (was_welcomed) backoff = options_.reconnect_min;
      absl::Duration wait = backoff / 2 + (backoff / 2) * absl::Uniform(rng, 0.0, 1.0);
      MEDEVAL_LOG(WARNING) << "lost the coordinator at " << options_.coordinator << " ("
                           << (status.error_message().empty() ? "stream ended"
                                                              : status.error_message())
                           << "); reconnecting in " << absl::Trunc(wait, absl::Milliseconds(10));
      backoff = std::min(backoff * 2, options_.reconnect_max);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
    }
  }
  absl::MutexLock lock(&mu_);
  for (auto& [id, f] : inflight_) CancelAsk(f.ask_id);
  inflight_.clear();
  stopped_ = true;
  cv_.SignalAll();
}

void Worker::OnStreamDone(Stream* stream, const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  if (stream_ == stream) stream_ = nullptr;
  stream_status_ = status;
}

void Worker::OnStreamGone() {
  absl::MutexLock lock(&mu_);
  stream_done_ = true;
  cv_.SignalAll();
}

void Worker::OnMessage(Stream* stream, const v1::CoordinatorMessage& msg) {
  {
    absl::MutexLock lock(&mu_);
    if (stream != stream_) return;
    HandleLocked(msg);
  }
  // Outside mu_: starting attempts may report grant demand back to us.
  if (msg.grants() > 0) backend_.AddGrants(msg.grants());
  if (msg.has_welcome()) OnGrantDemand();  // a new coordinator must hear what we wait for
}

void Worker::HandleLocked(const v1::CoordinatorMessage& msg) {
  v1::WorkerMessage reply;
  if (msg.has_welcome()) {
    welcomed_ = true;
    // Reconnections, not attempts: a stream welcomed after an earlier one.
    if (stats_.ever_connected) ++stats_.reconnects;
    stats_.ever_connected = true;
    stats_.connected = true;
    if (msg.welcome().heartbeat_interval_ms() > 0) {
      heartbeat_interval_ = absl::Milliseconds(msg.welcome().heartbeat_interval_ms());
    }
    MEDEVAL_LOG(INFO) << "connected to " << options_.coordinator << " as "
                      << msg.welcome().worker_id() << " (model " << options_.model << ")";
    if (batch_ != nullptr) {
      // A report made between the hello and the welcome went nowhere.
      *outbox_.mutable_batch_report() = batch_report_;
      ScheduleFlushLocked();
    }
  }
  for (const v1::RunInfo& run : msg.runs()) {
    if (run.rate_limited()) backend_.SetGrantMode(true);
    runs_[run.run_id()] = run;
  }
  for (const v1::QuestionKey& key : msg.acks()) unacked_.erase(KeyString(key));
  if (failing_ && msg.acks_size() > 0) MaybeFinishFailingLocked(false);
  for (uint64_t id : msg.cancels()) {
    for (auto it = queued_.begin(); it != queued_.end(); ++it) {
      if (it->lease_id() == id) {
        queued_.erase(it);
        break;
      }
    }
    // Every cancel is answered, with the requests the copy sent (0 when it
    // had finished or not started): the coordinator counts them.
    v1::CancelledCopy* c = reply.add_cancelled();
    c->set_lease_id(id);
    auto it = inflight_.find(id);
    if (it != inflight_.end()) {
      c->set_attempts_sent(static_cast<uint32_t>(CancelAsk(it->second.ask_id)));
      inflight_.erase(it);
    }
  }
  if (msg.pause_ms() > 0) backend_.PauseUntil(absl::Now() + absl::Milliseconds(msg.pause_ms()));
  if (msg.has_concurrency() && options_.auto_concurrency) {
    target_ = std::clamp(static_cast<int>(msg.concurrency().limit()), 1, options_.concurrency);
    // Coming back from a down endpoint the ramp goes on, towards the new share.
    limit_ = ramping_ ? std::min(limit_, target_) : target_;
    if (limit_ == target_) ramping_ = false;
    MEDEVAL_LOG(DEBUG) << "concurrency " << target_ << " of the model's "
                       << msg.concurrency().model_limit() << " (" << msg.concurrency().reason()
                       << ")";
    StartQueuedLocked();
  }
  for (const v1::ImageData& img : msg.images()) images_[img.sha256()] = img;
  for (v1::Lease lease : msg.leases()) {
    ++stats_.leases;
    for (v1::ImagePart& part : *lease.mutable_images()) {
      if (!part.data().empty() || part.sha256().empty()) continue;
      auto img = images_.find(part.sha256());
      // Unknown bytes stay empty: the backend refuses the question.
      if (img != images_.end()) part.set_data(img->second.data());
    }
    if (draining_ || paused_ || endpoint_state_.down()) {
      reply.add_released(lease.lease_id());
    } else if (static_cast<int>(inflight_.size()) < limit_) {
      StartLocked(lease);
    } else {
      queued_.push_back(lease);
    }
  }
  if (reply.results_size() > 0 || reply.released_size() > 0 || reply.cancelled_size() > 0) {
    SendLocked(reply);
  }
  cv_.SignalAll();
}

void Worker::StartLocked(const v1::Lease& lease) {
  auto run = runs_.find(lease.key().run_id());
  if (run == runs_.end()) {
    MEDEVAL_LOG(WARNING) << "lease " << lease.lease_id() << " for unknown run "
                         << lease.key().run_id() << "; handing it back";
    v1::WorkerMessage msg;
    msg.add_released(lease.lease_id());
    SendLocked(msg);
    return;
  }
  const uint64_t lease_id = lease.lease_id();
  const v1::QuestionKey key = lease.key();
  auto done = [this, lease_id, key](AskOutcome o) { OnAsked(lease_id, key, std::move(o)); };
  uint64_t ask = batch_ != nullptr ? batch_->Ask(run->second, lease, std::move(done))
                                   : backend_.Ask(run->second, lease, std::move(done));
  inflight_[lease_id] = Inflight{ask, key};
}

void Worker::StartQueuedLocked() {
  while (!draining_ && !paused_ && !endpoint_state_.down() && !queued_.empty() &&
         static_cast<int>(inflight_.size()) < limit_) {
    v1::Lease lease = std::move(queued_.front());
    queued_.pop_front();
    StartLocked(lease);
  }
}

void Worker::OnAsked(uint64_t lease_id, const v1::QuestionKey& key, AskOutcome outcome) {
  absl::MutexLock lock(&mu_);
  auto it = inflight_.find(lease_id);
  if (it == inflight_.end()) return;  // cancelled meanwhile
  inflight_.erase(it);
  if (outcome.kind == AskOutcome::kBackend || outcome.kind == AskOutcome::kHandBack) {
    // Not this question's fault: back to the queue, its attempts unspent.
    v1::WorkerMessage msg;
    msg.add_released(lease_id);
    SendLocked(msg);
    if (outcome.kind == AskOutcome::kBackend) FailLocked(outcome.error);
    MaybeFinishFailingLocked(false);
    StartQueuedLocked();
    cv_.SignalAll();
    return;
  }
  v1::Result r;
  r.set_lease_id(lease_id);
  *r.mutable_key() = key;
  if (outcome.kind == AskOutcome::kAnswered) {
    *r.mutable_answer() = std::move(outcome.record);
    ++stats_.answered;
    if (ramping_ && ++limit_ >= target_) {
      limit_ = target_;
      ramping_ = false;
    }
  } else {
    *r.mutable_failure() = std::move(outcome.record);
    ++stats_.failed;
  }
  *outbox_.add_results() = r;
  unacked_[KeyString(key)] = std::move(r);
  ScheduleFlushLocked();
  StartQueuedLocked();
  cv_.SignalAll();
}

void Worker::ScheduleFlushLocked() {
  if (options_.result_linger <= absl::ZeroDuration()) {
    FlushOutboxLocked();
    return;
  }
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  http_.After(options_.result_linger, [this] { FlushOutbox(); });
}

void Worker::FlushOutbox() {
  absl::MutexLock lock(&mu_);
  flush_scheduled_ = false;
  FlushOutboxLocked();
}

void Worker::FlushOutboxLocked() {
  // Without a welcomed stream the answers wait in unacked_ and go out with
  // the next welcome; grant demand is reported again after it.
  if (welcomed_ && outbox_.ByteSizeLong() > 0) SendLocked(outbox_);
  outbox_.Clear();
}

void Worker::Pause(const std::string& why) {
  absl::MutexLock lock(&mu_);
  if (paused_) return;
  paused_ = true;
  v1::WorkerMessage msg;
  msg.set_accepting(false);
  for (const v1::Lease& l : queued_) msg.add_released(l.lease_id());
  queued_.clear();
  for (const auto& [id, f] : inflight_) {
    CancelAsk(f.ask_id);
    msg.add_released(id);
  }
  MEDEVAL_LOG(WARNING) << "pausing (" << why << "): handing back " << msg.released_size()
                       << " questions";
  inflight_.clear();
  SendLocked(msg);
  cv_.SignalAll();
}

void Worker::Resume() {
  absl::MutexLock lock(&mu_);
  if (!paused_) return;
  paused_ = false;
  v1::WorkerMessage msg;
  msg.set_accepting(true);
  SendLocked(msg);
}

bool Worker::StoppedOrDelivered() const {
  return stopped_ || (inflight_.empty() && unacked_.empty());
}

void Worker::Drain(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    if (!draining_) {
      draining_ = true;
      v1::WorkerMessage msg;
      msg.set_draining(true);
      for (const v1::Lease& l : queued_) msg.add_released(l.lease_id());
      queued_.clear();
      SendLocked(msg);
      MEDEVAL_LOG(INFO) << "draining: finishing " << inflight_.size() << " questions in flight";
    }
    mu_.AwaitWithTimeout(absl::Condition(this, &Worker::StoppedOrDelivered), grace);
    if (!inflight_.empty() || !unacked_.empty()) {
      MEDEVAL_LOG(WARNING) << "drain grace over: " << inflight_.size() << " questions unfinished, "
                           << unacked_.size() << " answers unacknowledged; the coordinator will "
                           << "hand the unfinished ones to other workers";
    }
  }
  Stop();
}

void Worker::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);  // one joiner at a time
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (stream_ != nullptr) stream_->Cancel();
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  // The batch runner waits on its own HTTP calls (polls, downloads, the
  // cancels of --batch-on-exit cancel): it stops while the loop still runs.
  if (batch_ != nullptr) batch_->Stop();
  // Transfers and timers call into the backend and into this worker: stop
  // them before either goes (a transfer completing during teardown would
  // otherwise call into a destroyed backend).
  http_.Stop();
}

absl::Status Worker::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
  return fatal_;
}

absl::Status Worker::error() {
  absl::MutexLock lock(&mu_);
  return fatal_;
}

Worker::Stats Worker::stats() {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.inflight = static_cast<int>(inflight_.size());
  s.queued = static_cast<int>(queued_.size());
  s.unacked = static_cast<int>(unacked_.size());
  s.concurrency_limit = limit_;
  s.paused = paused_;
  s.draining = draining_;
  s.endpoint = endpoint_state_;
  return s;
}

}  // namespace medeval
