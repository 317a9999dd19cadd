#include "worker/managed_worker.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/endpoint_state.h"
#include "common/log.h"
#include "common/url.h"
#include "worker/endpoint_health.h"

namespace medeval {
namespace {

constexpr int kMaxFailedStarts = 5;

}  // namespace

ManagedWorker::ManagedWorker(WorkerOptions options, std::optional<ServeOptions> serve)
    : options_(std::move(options)), serve_options_(std::move(serve)) {}

ManagedWorker::~ManagedWorker() { Stop(); }

Worker* ManagedWorker::worker() {
  absl::MutexLock lock(&mu_);
  return worker_.get();
}

void ManagedWorker::SetBatchCancelOnExit(bool cancel) {
  if (Worker* w = worker()) w->SetBatchCancelOnExit(cancel);
}

absl::Status ManagedWorker::Start() {
  if (!serve_options_.has_value()) {
    auto w = std::make_unique<Worker>(options_);
    absl::Status st = w->Start();
    if (!st.ok()) return st;
    Worker* raw = w.get();
    {
      absl::MutexLock lock(&mu_);
      worker_ = std::move(w);
    }
    supervisor_ = std::thread([this, raw] { Finish(raw->Wait()); });
    return absl::OkStatus();
  }
  if (serve_options_->command.empty()) return absl::InvalidArgumentError("--serve needs a command");
  server_ = std::make_unique<ModelServer>(*serve_options_);
  supervisor_ = std::thread([this] { Supervise(); });
  return absl::OkStatus();
}

bool ManagedWorker::SleepUnlessStopping(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void ManagedWorker::Supervise() {
  absl::Duration backoff = absl::Seconds(1);
  int failed_starts = 0;
  auto stopping = [this]() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  while (!stopping()) {
    absl::Status st = server_->Start();
    if (st.ok()) st = server_->WaitReady(serve_options_->startup_timeout, stopping);
    if (stopping()) break;
    if (!st.ok()) {
      server_->Stop();
      if (++failed_starts >= kMaxFailedStarts) {
        Finish(absl::UnavailableError(absl::StrCat("the model server failed to start ",
                                                   failed_starts, " times; last: ", st.message())));
        return;
      }
      MEDEVAL_LOG(WARNING) << st.message() << "; trying again in " << backoff;
      if (!SleepUnlessStopping(backoff)) break;
      backoff = std::min(backoff * 2, absl::Minutes(2));
      continue;
    }
    failed_starts = 0;
    backoff = absl::Seconds(1);
    {
      absl::MutexLock lock(&mu_);
      server_ready_ = true;
    }
    Endpoint ep = *ParseEndpoint(server_->base_url());
    Worker* w = worker();
    if (w == nullptr) {
      // Only now does the worker ask the coordinator for work.
      WorkerOptions wo = options_;
      wo.backend.endpoint = ep;
      auto created = std::make_unique<Worker>(wo);
      st = created->Start();
      if (!st.ok()) {
        Finish(st);
        return;
      }
      absl::MutexLock lock(&mu_);
      w = created.get();
      worker_ = std::move(created);
    } else {
      w->SetEndpoint(ep);
      w->Resume();
    }
    // Watch the server while the worker works.
    while (!stopping() && server_->Running() && w->error().ok()) {
      SleepUnlessStopping(absl::Milliseconds(200));
    }
    if (stopping()) break;
    if (!w->error().ok()) {
      Finish(w->error());
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      ++restarts_;
      server_ready_ = false;
    }
    w->Pause(absl::StrCat("the model server ", server_->ExitDescription()));
    MEDEVAL_LOG(WARNING) << "the model server " << server_->ExitDescription()
                         << "; restarting it in " << backoff;
    if (!SleepUnlessStopping(backoff)) break;
    backoff = std::min(backoff * 2, absl::Minutes(2));
  }
  Finish(absl::OkStatus());
}

void ManagedWorker::Finish(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  if (!status.ok() && error_.ok()) error_ = status;
  done_ = true;
}

void ManagedWorker::Drain(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (Worker* w = worker()) w->Drain(grace);
  Stop();
}

void ManagedWorker::Stop() {
  // A drain (signal thread) and the main thread may stop at once; only one
  // may join the threads.
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (Worker* w = worker()) w->Stop();
  if (supervisor_.joinable()) supervisor_.join();
  // The supervisor may have created the worker just before it saw the stop.
  if (Worker* w = worker()) w->Stop();
  if (server_) server_->Stop();
  Finish(absl::OkStatus());
}

absl::Status ManagedWorker::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done_));
  return error_;
}

absl::Status ManagedWorker::error() {
  Worker* w;
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    w = worker_.get();
  }
  return w ? w->error() : absl::OkStatus();
}

absl::Status ManagedWorker::Live() {
  absl::Status st = error();
  if (!st.ok()) return absl::UnavailableError(st.message());
  return absl::OkStatus();
}

absl::Status ManagedWorker::Ready() {
  absl::Status live = Live();
  if (!live.ok()) return live;
  Worker* w;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("stopping");
    if (server_ != nullptr && !server_ready_) {
      return absl::UnavailableError("the model server is not ready");
    }
    w = worker_.get();
  }
  if (w == nullptr) return absl::UnavailableError("starting");
  Worker::Stats s = w->stats();
  if (s.draining) return absl::UnavailableError("draining");
  if (s.paused) return absl::UnavailableError("paused");
  if (s.endpoint.down()) return absl::UnavailableError(EndpointDownText(s.endpoint));
  if (!s.connected) return absl::UnavailableError("not connected to the coordinator");
  return absl::OkStatus();
}

WorkerSnapshot ManagedWorker::Snapshot() {
  WorkerSnapshot s;
  s.model = options_.model;
  Worker* w;
  {
    absl::MutexLock lock(&mu_);
    w = worker_.get();
    s.serving_model = server_ != nullptr;
    s.server_ready = server_ready_;
    s.server_restarts = restarts_;
  }
  s.name = w != nullptr ? w->name() : options_.name;
  if (w != nullptr) s.stats = w->stats();
  return s;
}

}  // namespace medeval
