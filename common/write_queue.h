// The writes of one gRPC stream: at most one write in flight (the callback
// API allows no more), and whatever is queued behind it merges into a single
// pending message that goes out as the next write. Under load one write then
// carries many messages' worth instead of a queue of small ones.
//
// Both ends of the Work stream use it: the coordinator's reactor
// (coordinator/service.cc) and the worker's (worker/worker_stream.h). The
// reactor stays in charge of the stream: it calls StartWrite with what Next
// returns, reports OnWriteDone back through WriteDone, and decides itself
// when to half-close or finish once the queue is idle.
//
// Thread-safety: thread-compatible. The reactor guards it with the mutex that
// guards its own stream state (Send runs on other threads, OnWriteDone on
// gRPC's).
#ifndef MEDEVAL_COMMON_WRITE_QUEUE_H_
#define MEDEVAL_COMMON_WRITE_QUEUE_H_

#include <functional>
#include <utility>

namespace medeval {

template <typename Msg>
class WriteQueue {
 public:
  // Moves what `src` holds onto the end of `dst` (src may be left empty).
  using MergeFn = std::function<void(Msg* src, Msg* dst)>;

  // Merges with the message's MergeFrom (repeated fields append).
  WriteQueue() : merge_([](Msg* src, Msg* dst) { dst->MergeFrom(*src); }) {}
  explicit WriteQueue(MergeFn merge) : merge_(std::move(merge)) {}
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Queues `msg`: it becomes the pending message (no copy) or merges into it.
  void Push(Msg&& msg) {
    if (has_pending_) {
      merge_(&msg, &pending_);
    } else {
      pending_.Swap(&msg);
    }
    has_pending_ = true;
  }
  // Queues a copy of `msg`.
  void Push(const Msg& msg) {
    if (has_pending_) {
      pending_.MergeFrom(msg);
    } else {
      pending_ = msg;
    }
    has_pending_ = true;
  }

  // The next write, when one may start now (nothing in flight, no write
  // failed, something pending): the pending message, moved to where it stays
  // untouched until WriteDone, for the reactor to pass to StartWrite. The
  // reactor may still add to it before StartWrite. Else nullptr.
  Msg* Next() {
    if (busy_ || failed_ || !has_pending_) return nullptr;
    out_.Swap(&pending_);
    pending_.Clear();
    has_pending_ = false;
    busy_ = true;
    return &out_;
  }
  // Another operation that excludes writes is in flight (WritesDone).
  void MarkBusy() { busy_ = true; }
  // The write (or the operation of MarkBusy) ended; !ok: the stream is
  // broken and no further write starts.
  void WriteDone(bool ok) {
    busy_ = false;
    if (!ok) failed_ = true;
  }

  bool busy() const { return busy_; }      // a write is in flight
  bool failed() const { return failed_; }  // a write failed
  bool has_pending() const { return has_pending_; }

 private:
  const MergeFn merge_;
  Msg pending_;
  Msg out_;  // handed to StartWrite; touched again only after WriteDone
  bool has_pending_ = false;
  bool busy_ = false;
  bool failed_ = false;
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_WRITE_QUEUE_H_
