#include "worker/worker_stream.h"

namespace medeval {

Worker::Stream::Stream(Worker* worker, v1::Coordinator::Stub* stub, const ClientSecurity& security,
                       const v1::WorkerMessage& hello)
    : worker_(worker) {
  AddAuth(&context_, security);
  stub->async()->Work(&context_, this);
  AddHold();
  StartRead(&in_);
  {
    absl::MutexLock lock(&mu_);
    writes_.Push(hello);
    MaybeWriteLocked();
  }
  StartCall();
}

void Worker::Stream::Send(const v1::WorkerMessage& msg) {
  absl::MutexLock lock(&mu_);
  if (closed_ || half_closed_) return;
  writes_.Push(msg);
  MaybeWriteLocked();
}

void Worker::Stream::CloseSend() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  want_close_ = true;
  MaybeWriteLocked();
}

void Worker::Stream::OnReadDone(bool ok) {
  if (ok) {
    worker_->OnMessage(this, in_);
    StartRead(&in_);
    return;
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
  MaybeReleaseLocked();
}

void Worker::Stream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writes_.WriteDone(ok);
  if (closed_) {
    MaybeReleaseLocked();
  } else {
    MaybeWriteLocked();
  }
}

void Worker::Stream::OnWritesDoneDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writes_.WriteDone(true);
  MaybeReleaseLocked();
}

void Worker::Stream::OnDone(const grpc::Status& status) {
  Worker* const worker = worker_;
  worker->OnStreamDone(this, status);
  // Destroyed before the worker hears the stream is gone: the context holds a
  // reference to the channel, and once Stop returns the worker may drop its
  // own. Were the context's the last, the channel would die here, on a thread
  // of gRPC's callback queue, and take that queue down from one of its own
  // threads (an abort in gRPC's ref_counted.h).
  delete this;
  worker->OnStreamGone();
}

void Worker::Stream::MaybeWriteLocked() {
  if (writes_.busy() || writes_.failed()) return;
  if (v1::WorkerMessage* out = writes_.Next()) {
    StartWrite(out);
  } else if (want_close_ && !half_closed_) {
    half_closed_ = true;
    writes_.MarkBusy();
    StartWritesDone();
  }
}

void Worker::Stream::MaybeReleaseLocked() {
  if (closed_ && !writes_.busy() && !released_) {
    released_ = true;
    RemoveHold();
  }
}

}  // namespace medeval
