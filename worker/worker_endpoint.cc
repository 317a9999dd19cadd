// The worker's reactions to its model endpoint failing as a whole: down
// (questions handed back unspent, probing with back-off, ramping up again
// once it answers) and unusable (a refused key: no new requests, every
// answer received delivered before stopping). Part of worker.h's Worker.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/endpoint_state.h"
#include "common/log.h"
#include "worker/endpoint_probe.h"
#include "worker/worker.h"

namespace medeval {
namespace {

// How long answers received before a fatal backend error may take to be
// acknowledged before the worker stops anyway.
constexpr absl::Duration kDeliveryDeadline = absl::Seconds(30);

}  // namespace

void Worker::OnEndpointDown(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (endpoint_state_.down() || stopping_) return;
  endpoint_state_.set_down(true);
  endpoint_state_.set_reason(reason);
  endpoint_state_.set_since_unix_ms(absl::ToUnixMillis(absl::Now()));
  endpoint_state_.set_probe_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.backend.probe_min)));
  ramping_ = false;
  v1::WorkerMessage msg;
  for (const v1::Lease& l : queued_) msg.add_released(l.lease_id());
  queued_.clear();
  // Requests at the server finish: an answer that comes is kept (it is paid
  // for), a failure comes back as kHandBack. The rest go back now.
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (AskAtServerLocked(it->second.ask_id)) {
      ++it;
      continue;
    }
    CancelAsk(it->second.ask_id);
    msg.add_released(it->first);
    inflight_.erase(it++);
  }
  *msg.mutable_endpoint_state() = endpoint_state_;
  MEDEVAL_LOG(WARNING) << EndpointDownText(endpoint_state_) << "; handed back "
                       << msg.released_size() << " questions, their attempts unspent";
  SendLocked(msg);
  ScheduleProbeLocked();
  cv_.SignalAll();
}

void Worker::ScheduleProbeLocked() {
  probe_timer_ =
      http_.After(absl::Milliseconds(endpoint_state_.probe_interval_ms()), [this] { Probe(); });
}

void Worker::Probe() {
  HttpRequest req;
  {
    absl::MutexLock lock(&mu_);
    probe_timer_ = 0;
    if (!endpoint_state_.down() || stopping_) return;
    // Extra headers come with a run (some gateways authenticate with them).
    v1::RequestParams params;
    if (!runs_.empty()) params = runs_.begin()->second.params();
    const absl::Duration timeout =
        std::clamp(absl::Milliseconds(endpoint_state_.probe_interval_ms()), absl::Seconds(2),
                   absl::Seconds(10));
    req = ModelsRequest(options_.backend, params, timeout);
  }
  http_.Send(std::move(req), [this](HttpResponse r) { OnProbe(std::move(r)); });
}

void Worker::OnProbe(HttpResponse resp) {
  absl::MutexLock lock(&mu_);
  if (!endpoint_state_.down() || stopping_) return;
  auto check = JudgeModelsResponse(resp, options_.backend, "");
  if (check.ok()) {
    const absl::Duration was = absl::Now() - absl::FromUnixMillis(endpoint_state_.since_unix_ms());
    MEDEVAL_LOG(WARNING) << "the endpoint answers again after "
                         << absl::FormatDuration(absl::Trunc(was, absl::Seconds(1)))
                         << "; resuming with 1 request in flight, one more per answer";
    endpoint_state_.Clear();
    backend_.EndpointUp();
    limit_ = 1;
    ramping_ = limit_ < target_;
    ok_streak_ = 0;
    v1::WorkerMessage msg;
    *msg.mutable_endpoint_state() = endpoint_state_;
    SendLocked(msg);
    cv_.SignalAll();
    return;
  }
  if (check.status().code() == absl::StatusCode::kUnauthenticated) {
    FailLocked(std::string(check.status().message()));
    return;
  }
  const absl::Duration next = std::min(absl::Milliseconds(endpoint_state_.probe_interval_ms()) * 2,
                                       options_.backend.probe_max);
  const std::string reason = std::string(check.status().message());
  if (next != absl::Milliseconds(endpoint_state_.probe_interval_ms())) {
    endpoint_state_.set_probe_interval_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(next)));
    v1::WorkerMessage msg;
    *msg.mutable_endpoint_state() = endpoint_state_;
    SendLocked(msg);
  }
  MEDEVAL_LOG(INFO) << "probe: " << reason << "; " << EndpointDownText(endpoint_state_);
  ScheduleProbeLocked();
}

void Worker::FailLocked(const std::string& error) {
  if (!fatal_.ok() || failing_) return;
  // No new request, no retry; requests in flight finish (the server has
  // them: their answers are paid for) and every answer received is
  // delivered and journaled before the worker stops.
  failing_ = true;
  failure_ = error;
  fail_deadline_ = absl::Now() + kDeliveryDeadline;
  backend_.Halt();
  MEDEVAL_LOG(ERROR) << "the model backend is unusable: " << error << "; no new requests, "
                     << "delivering the answers received so far";
  draining_ = true;
  v1::WorkerMessage msg;
  msg.mutable_error()->set_message(error);
  for (const v1::Lease& l : queued_) msg.add_released(l.lease_id());
  queued_.clear();
  FlushOutboxLocked();  // answers first, so they are journaled before the error is shown
  SendLocked(msg);
  MaybeFinishFailingLocked(false);
  cv_.SignalAll();
}

void Worker::MaybeFinishFailingLocked(bool deadline_passed) {
  if (!failing_ || stopping_) return;
  if (!deadline_passed && (!inflight_.empty() || !unacked_.empty())) return;
  if (!inflight_.empty() || !unacked_.empty()) {
    MEDEVAL_LOG(WARNING) << "delivery deadline over: " << inflight_.size()
                         << " requests unfinished, " << unacked_.size()
                         << " answers unacknowledged";
  }
  fatal_ = absl::FailedPreconditionError(absl::StrCat(failure_, " (the ", stats_.answered,
                                                      " answers this worker received are saved)"));
  MEDEVAL_LOG(ERROR) << "the model backend is unusable, stopping: " << fatal_.message();
  v1::WorkerMessage msg;
  for (const auto& [id, f] : inflight_) {
    CancelAsk(f.ask_id);
    msg.add_released(id);
  }
  inflight_.clear();
  if (msg.released_size() > 0) SendLocked(msg);
  stopping_ = true;
  CloseSendLocked();
  cv_.SignalAll();
}

}  // namespace medeval
