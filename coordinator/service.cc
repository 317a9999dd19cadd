#include "coordinator/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/file_util.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "common/write_queue.h"
#include "coordinator/run_images.h"
#include "coordinator/scheduler.h"
#include "coordinator/upload.h"

namespace medeval {
namespace {

constexpr size_t kFetchChunk = 1 << 20;

// Runs `fn` (returning absl::Status); an exception becomes kInternal, so a
// reaction or a task always ends its call instead of leaving it open.
template <typename F>
absl::Status NoThrow(F&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    MEDEVAL_LOG(ERROR) << "internal error: " << e.what();
    return absl::InternalError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    MEDEVAL_LOG(ERROR) << "internal error (unknown exception)";
    return absl::InternalError("internal error");
  }
}

// Counts a call as open from construction to OnDone.
class OpenCall {
 public:
  OpenCall(CoordinatorService::CallCounts* counts, CoordinatorService::CallKind kind)
      : counts_(counts), kind_(kind) {
    counts_->open[kind_].fetch_add(1);
  }
  ~OpenCall() { counts_->open[kind_].fetch_sub(1); }
  void Cancelled() { counts_->cancelled.fetch_add(1); }

 private:
  CoordinatorService::CallCounts* const counts_;
  const CoordinatorService::CallKind kind_;
};

// Reactors that end the call at once (refused token, bad request).
template <typename Req, typename Resp>
class RejectBidi : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit RejectBidi(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Req>
class RejectRead : public grpc::ServerReadReactor<Req> {
 public:
  explicit RejectRead(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Resp>
class RejectWrite : public grpc::ServerWriteReactor<Resp> {
 public:
  explicit RejectWrite(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// Appends `src` to `dst`, moving the repeated parts instead of copying them.
void MoveInto(v1::CoordinatorMessage* src, v1::CoordinatorMessage* dst) {
  if (src->has_welcome()) *dst->mutable_welcome() = std::move(*src->mutable_welcome());
  for (auto& r : *src->mutable_runs()) *dst->add_runs() = std::move(r);
  for (auto& l : *src->mutable_leases()) *dst->add_leases() = std::move(l);
  for (auto& a : *src->mutable_acks()) *dst->add_acks() = std::move(a);
  dst->mutable_cancels()->MergeFrom(src->cancels());
  if (src->pause_ms() > 0) dst->set_pause_ms(src->pause_ms());
}

// One worker's stream. The scheduler pushes messages through Send (with its
// mutex held); they merge into one pending batch while a write is in flight.
class WorkStream : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>,
                   public WorkerChannel {
 public:
  WorkStream(Scheduler* scheduler, CoordinatorService::CallCounts* counts)
      : scheduler_(scheduler), call_(counts, CoordinatorService::kWorker), writes_(MoveInto) {
    StartRead(&in_);
  }

  void Send(v1::CoordinatorMessage msg) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    // Each image's bytes go once per stream, before the first lease naming
    // them; they are copied into the message at write time.
    for (const v1::Lease& l : msg.leases()) {
      for (const v1::ImagePart& part : l.images()) {
        if (part.sha256().empty() || !images_sent_.insert(part.sha256()).second) continue;
        if (auto bytes = ImageStore::Global().Get(part.sha256())) {
          images_pending_.push_back({part.sha256(), part.mime_type(), std::move(bytes)});
        }
      }
    }
    writes_.Push(std::move(msg));
    MaybeWriteLocked();
  }

  void Close(const absl::Status& status) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!closing_) close_status_ = ToGrpcStatus(status);
    closing_ = true;
    MaybeWriteLocked();
  }

  void OnReadDone(bool ok) override {
    bool read_on = false;
    absl::Status st = NoThrow([&] { return ReadDone(ok, &read_on); });
    if (!st.ok()) {
      if (!id_.empty()) scheduler_->Disconnect(id_, this);
      Close(st);
    } else if (read_on) {
      StartRead(&in_);
    }
  }

  void OnCancel() override { call_.Cancelled(); }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    writes_.WriteDone(ok);  // a broken stream: the read side will see it too
    MaybeWriteLocked();
  }

  void OnDone() override {
    if (!id_.empty()) scheduler_->Disconnect(id_, this);
    delete this;
  }

 private:
  absl::Status ReadDone(bool ok, bool* read_on) {
    if (!ok) {
      // The worker closed its side, or the connection is gone.
      if (!id_.empty()) scheduler_->Disconnect(id_, this);
      Close(absl::OkStatus());
      return absl::OkStatus();
    }
    if (id_.empty()) {
      if (!in_.has_hello()) {
        Close(absl::InvalidArgumentError("the first message on a worker stream must be a hello"));
        return absl::OkStatus();
      }
      auto id = scheduler_->Connect(in_, this);
      if (!id.ok()) {
        MEDEVAL_LOG(WARNING) << "refused a worker: " << id.status().message();
        Close(id.status());
        return absl::OkStatus();
      }
      id_ = *id;
    }
    scheduler_->OnMessage(id_, this, &in_);
    *read_on = true;
    return absl::OkStatus();
  }

  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writes_.busy() || finished_) return;
    if (v1::CoordinatorMessage* out = writes_.Next()) {
      for (const PendingImage& img : images_pending_) {
        v1::ImageData* d = out->add_images();
        d->set_sha256(img.sha256);
        d->set_mime_type(img.mime);
        d->set_data(*img.bytes);
      }
      images_pending_.clear();
      StartWrite(out);
      return;
    }
    if (closing_) {
      finished_ = true;
      Finish(close_status_);
    }
  }

  Scheduler* const scheduler_;
  OpenCall call_;
  v1::WorkerMessage in_;  // reads are sequential: only the read reactions use it
  std::string id_;        // set once, by the first read reaction
  absl::Mutex mu_;
  WriteQueue<v1::CoordinatorMessage> writes_ ABSL_GUARDED_BY(mu_);
  struct PendingImage {
    std::string sha256, mime;
    std::shared_ptr<const std::string> bytes;
  };
  std::vector<PendingImage> images_pending_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> images_sent_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status close_status_ ABSL_GUARDED_BY(mu_);
};

// Receives a run: the spec and manifest, then the suite's files in chunks.
// The run is created (off the gRPC threads) only from a complete upload.
class SubmitUpload : public grpc::ServerReadReactor<v1::SubmitChunk> {
 public:
  SubmitUpload(const CoordinatorService::Backend* backend, CoordinatorService::CallCounts* counts,
               std::string peer, v1::SubmitResponse* response)
      : backend_(backend),
        call_(counts, CoordinatorService::kUpload),
        peer_(std::move(peer)),
        response_(response),
        upload_([&] {
          UploadReceiver::Limits l;
          l.max_upload_bytes = backend->max_upload_bytes;
          l.max_file_bytes = std::min(l.max_file_bytes, l.max_upload_bytes);
          return l;
        }()) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    absl::Status st = NoThrow([&] { return ok ? upload_.Add(&chunk_) : Complete(); });
    if (!st.ok()) {
      End(st);
    } else if (ok) {
      StartRead(&chunk_);
    }
  }

  void OnCancel() override {
    cancelled_ = true;
    call_.Cancelled();
  }

  void OnDone() override { delete this; }

 private:
  // The client half-closed the stream (or the call broke): create the run
  // if, and only if, every file arrived whole.
  absl::Status Complete() {
    auto spec = upload_.Complete(&files_);
    if (!spec.ok()) {
      if (cancelled_) return absl::CancelledError("the upload was cancelled; nothing was created");
      return spec.status();
    }
    spec_ = std::move(*spec);
    backend_->executor->Post([this] {
      absl::Status st = NoThrow([this] {
        auto resp = backend_->create_run(std::move(spec_), std::move(files_));
        if (resp.ok()) *response_ = *resp;
        return resp.status();
      });
      End(st);
    });
    return absl::OkStatus();
  }

  void End(const absl::Status& st) {
    if (!st.ok()) {
      MEDEVAL_LOG(WARNING) << "submission from " << peer_ << " refused after " << upload_.received()
                           << " bytes: " << st.message();
    }
    Finish(ToGrpcStatus(st));
  }

  const CoordinatorService::Backend* const backend_;
  OpenCall call_;
  const std::string peer_;
  v1::SubmitResponse* const response_;
  UploadReceiver upload_;
  v1::SubmitChunk chunk_;
  std::atomic<bool> cancelled_{false};
  v1::RunSpec spec_;
  std::vector<UploadedFile> files_;
};

// Streams a finished run's output files in chunks, reading on the executor.
class FetchStream : public grpc::ServerWriteReactor<v1::FileChunk> {
 public:
  FetchStream(Executor* executor, CoordinatorService::CallCounts* counts, std::string dir)
      : executor_(executor), call_(counts, CoordinatorService::kFetch), dir_(std::move(dir)) {
    Next();
  }
  ~FetchStream() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }

  void OnCancel() override { call_.Cancelled(); }

  void OnDone() override { delete this; }

 private:
  void Next() {
    executor_->Post([this] {
      absl::Status st = NoThrow([this] { return ReadChunk(); });
      if (!st.ok()) {
        Finish(ToGrpcStatus(st));
      } else if (done_) {
        Finish(grpc::Status::OK);
      } else {
        StartWrite(&chunk_);
      }
    });
  }

  absl::Status ReadChunk() {
    if (!listed_) {
      auto files = ListFilesRecursive(dir_);
      if (!files.ok()) return files.status();
      files_ = std::move(*files);
      listed_ = true;
    }
    if (fd_ < 0) {
      if (index_ >= files_.size()) {
        done_ = true;
        return absl::OkStatus();
      }
      std::string path = JoinPath(dir_, files_[index_]);
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) return ErrnoStatus(errno, path);
      struct stat st;
      if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, path);
      size_ = static_cast<uint64_t>(st.st_size);
      offset_ = 0;
    }
    chunk_.Clear();
    chunk_.set_path(files_[index_]);
    chunk_.set_offset(offset_);
    chunk_.set_size(size_);
    std::string* data = chunk_.mutable_data();
    data->resize(static_cast<size_t>(std::min<uint64_t>(kFetchChunk, size_ - offset_)));
    size_t got = 0;
    while (got < data->size()) {
      ssize_t n =
          ::pread(fd_, &(*data)[got], data->size() - got, static_cast<off_t>(offset_ + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::DataLossError(absl::StrCat(files_[index_], ": short read"));
      got += static_cast<size_t>(n);
    }
    offset_ += got;
    if (offset_ >= size_) {
      chunk_.set_last(true);
      ::close(fd_);
      fd_ = -1;
      ++index_;
    }
    return absl::OkStatus();
  }

  Executor* const executor_;
  OpenCall call_;
  const std::string dir_;
  bool listed_ = false;
  std::vector<std::string> files_;
  size_t index_ = 0;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  bool done_ = false;
  v1::FileChunk chunk_;
};

}  // namespace

CoordinatorService::CoordinatorService(Backend backend) : backend_(std::move(backend)) {}

CoordinatorService::OpenCalls CoordinatorService::open_calls() const {
  OpenCalls o;
  o.workers = calls_.open[kWorker].load();
  o.uploads = calls_.open[kUpload].load();
  o.fetches = calls_.open[kFetch].load();
  o.cancelled = calls_.cancelled.load();
  return o;
}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* CoordinatorService::Work(
    grpc::CallbackServerContext* context) {
  grpc::Status auth = CheckAuth(context, backend_.token);
  if (!auth.ok()) {
    MEDEVAL_LOG(WARNING) << "refused a worker from " << context->peer() << ": "
                         << auth.error_message();
    return new RejectBidi<v1::WorkerMessage, v1::CoordinatorMessage>(auth);
  }
  return new WorkStream(backend_.scheduler, &calls_);
}

grpc::ServerReadReactor<v1::SubmitChunk>* CoordinatorService::Submit(
    grpc::CallbackServerContext* context, v1::SubmitResponse* response) {
  grpc::Status auth = CheckAuth(context, backend_.token);
  if (!auth.ok()) return new RejectRead<v1::SubmitChunk>(auth);
  return new SubmitUpload(&backend_, &calls_, context->peer(), response);
}

grpc::ServerUnaryReactor* CoordinatorService::Status(grpc::CallbackServerContext* context,
                                                     const v1::StatusRequest* request,
                                                     v1::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status auth = CheckAuth(context, backend_.token);
  if (!auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  if (!request->run_id().empty() && !backend_.scheduler->HasRun(request->run_id())) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no run ", request->run_id())));
    return reactor;
  }
  absl::Status st = NoThrow([&] {
    *response = backend_.scheduler->Status(request->run_id());
    return absl::OkStatus();
  });
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

grpc::ServerWriteReactor<v1::FileChunk>* CoordinatorService::Fetch(
    grpc::CallbackServerContext* context, const v1::FetchRequest* request) {
  grpc::Status auth = CheckAuth(context, backend_.token);
  if (!auth.ok()) return new RejectWrite<v1::FileChunk>(auth);
  Scheduler& s = *backend_.scheduler;
  auto out = s.Output(request->run_id());
  if (!out.ok()) return new RejectWrite<v1::FileChunk>(ToGrpcStatus(out.status()));
  if (out->phase != RunPhase::kDone && out->phase != RunPhase::kIncomplete) {
    v1::StatusResponse st = s.Status(request->run_id());
    std::string progress;
    if (st.runs_size() == 1) {
      const auto& r = st.runs(0);
      progress =
          absl::StrCat(" (", r.answered() + r.failed(), "/", r.total(), " settled, state ",
                       r.state(), r.error().empty() ? "" : absl::StrCat(": ", r.error()), ")");
    }
    return new RejectWrite<v1::FileChunk>(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                     absl::StrCat("run ", request->run_id(), " is not finished", progress,
                                  "; watch it with `medeval status`")));
  }
  return new FetchStream(backend_.executor, &calls_, out->output_dir);
}

}  // namespace medeval
