// The worker's end of the Work stream. Messages queued by Send merge into one
// pending batch while a write is in flight (common/write_queue.h). A hold
// keeps the stream open while writes may still be started from outside
// reactions; it is released once the server side has ended and no write is
// in flight. What the coordinator sends goes to Worker::OnMessage, the end of
// the call to Worker::OnStreamDone; the stream then deletes itself and only
// then calls Worker::OnStreamGone, so that its context (which holds a
// reference to the channel) never outlives the worker's Stop.
//
// Thread-safety: Send, CloseSend and Cancel may be called from any thread
// (the worker calls them with its own mutex held); one mutex guards the
// writes.
#ifndef MEDEVAL_WORKER_WORKER_STREAM_H_
#define MEDEVAL_WORKER_WORKER_STREAM_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_util.h"
#include "common/write_queue.h"
#include "proto/medeval.grpc.pb.h"
#include "worker/worker.h"

namespace medeval {

class Worker::Stream : public grpc::ClientBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  // Starts the call; `hello` is its first message.
  Stream(Worker* worker, v1::Coordinator::Stub* stub, const ClientSecurity& security,
         const v1::WorkerMessage& hello);

  void Send(const v1::WorkerMessage& msg) ABSL_LOCKS_EXCLUDED(mu_);
  // Half-closes after the queued messages: the coordinator then ends the call.
  void CloseSend() ABSL_LOCKS_EXCLUDED(mu_);
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnWritesDoneDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone(const grpc::Status& status) override;

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Worker* const worker_;
  grpc::ClientContext context_;
  v1::CoordinatorMessage in_;
  absl::Mutex mu_;
  WriteQueue<v1::WorkerMessage> writes_ ABSL_GUARDED_BY(mu_);
  bool want_close_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_WORKER_STREAM_H_
