#include "coordinator/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/run_images.h"

namespace medeval {
namespace {

constexpr size_t kFetchChunk = 1 << 20;

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
  explicit WorkStream(Scheduler* scheduler) : scheduler_(scheduler) { StartRead(&in_); }

  void Send(v1::CoordinatorMessage msg) override {
    std::lock_guard<std::mutex> lock(mu_);
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
    if (has_pending_) {
      MoveInto(&msg, &pending_);
    } else {
      pending_.Swap(&msg);  // the common case: no copy
    }
    has_pending_ = true;
    MaybeWriteLocked();
  }

  void Close(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_) close_status_ = ToGrpcStatus(status);
    closing_ = true;
    MaybeWriteLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The worker closed its side, or the connection is gone.
      if (!id_.empty()) scheduler_->Disconnect(id_, this);
      Close(absl::OkStatus());
      return;
    }
    if (id_.empty()) {
      if (!in_.has_hello()) {
        Close(absl::InvalidArgumentError("the first message on a worker stream must be a hello"));
        return;
      }
      auto id = scheduler_->Connect(in_.hello(), this);
      if (!id.ok()) {
        Close(id.status());
        return;
      }
      id_ = *id;
    }
    scheduler_->OnMessage(id_, this, &in_);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) broken_ = true;  // the read side will see it too
    MaybeWriteLocked();
  }

  void OnDone() override {
    if (!id_.empty()) scheduler_->Disconnect(id_, this);
    delete this;
  }

 private:
  void MaybeWriteLocked() {
    if (writing_ || finished_) return;
    if (has_pending_ && !broken_) {
      out_.Swap(&pending_);
      pending_.Clear();
      for (const PendingImage& img : images_pending_) {
        v1::ImageData* d = out_.add_images();
        d->set_sha256(img.sha256);
        d->set_mime_type(img.mime);
        d->set_data(*img.bytes);
      }
      images_pending_.clear();
      has_pending_ = false;
      writing_ = true;
      StartWrite(&out_);
      return;
    }
    if (closing_) {
      finished_ = true;
      Finish(close_status_);
    }
  }

  Scheduler* const scheduler_;
  v1::WorkerMessage in_;  // reads are sequential: only the read reactions use it
  std::string id_;        // set once, by the first read reaction
  std::mutex mu_;
  v1::CoordinatorMessage pending_;  // guarded by mu_
  v1::CoordinatorMessage out_;      // guarded by mu_ until handed to StartWrite
  struct PendingImage {
    std::string sha256, mime;
    std::shared_ptr<const std::string> bytes;
  };
  std::vector<PendingImage> images_pending_;  // guarded by mu_
  std::set<std::string> images_sent_;         // guarded by mu_
  bool has_pending_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool closing_ = false;
  bool finished_ = false;
  grpc::Status close_status_;
};

// Receives a run: the spec, then the suite's files in chunks.
class SubmitUpload : public grpc::ServerReadReactor<v1::SubmitChunk> {
 public:
  SubmitUpload(Coordinator* coordinator, v1::SubmitResponse* response)
      : coordinator_(coordinator), response_(response) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client sent everything; store and start the run off the gRPC threads.
      coordinator_->executor().Post([this] {
        if (!have_spec_) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "submission without a spec"));
          return;
        }
        auto resp = coordinator_->CreateRun(std::move(spec_), std::move(files_));
        if (resp.ok()) *response_ = *resp;
        Finish(ToGrpcStatus(resp.status()));
      });
      return;
    }
    grpc::Status st = Absorb();
    if (!st.ok()) {
      Finish(st);
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  grpc::Status Absorb() {
    if (chunk_.has_spec()) {
      if (have_spec_) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "two specs");
      spec_ = chunk_.spec();
      have_spec_ = true;
    }
    if (chunk_.has_file()) {
      if (!IsSafeRelativePath(chunk_.file().path())) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("unsafe file path '", chunk_.file().path(), "'"));
      }
      files_.push_back({chunk_.file().path(), std::string()});
      files_.back().data.reserve(chunk_.file().size());
    }
    if (!chunk_.data().empty()) {
      if (files_.empty()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "file data before a file header");
      }
      bytes_ += chunk_.data().size();
      if (bytes_ > coordinator_->options().max_upload_bytes) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            absl::StrCat("submission larger than ",
                                         coordinator_->options().max_upload_bytes, " bytes"));
      }
      files_.back().data.append(chunk_.data());
    }
    return grpc::Status::OK;
  }

  Coordinator* const coordinator_;
  v1::SubmitResponse* const response_;
  v1::SubmitChunk chunk_;
  v1::RunSpec spec_;
  bool have_spec_ = false;
  std::vector<UploadedFile> files_;
  uint64_t bytes_ = 0;
};

// Streams a finished run's output files in chunks, reading on the executor.
class FetchStream : public grpc::ServerWriteReactor<v1::FileChunk> {
 public:
  FetchStream(Executor* executor, std::string dir) : executor_(executor), dir_(std::move(dir)) {
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

  void OnDone() override { delete this; }

 private:
  void Next() {
    executor_->Post([this] {
      absl::Status st = ReadChunk();
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

CoordinatorService::CoordinatorService(Coordinator* coordinator) : coordinator_(coordinator) {}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* CoordinatorService::Work(
    grpc::CallbackServerContext* context) {
  grpc::Status auth = CheckAuth(context, coordinator_->options().token);
  if (!auth.ok()) {
    MEDEVAL_LOG(WARNING) << "refused a worker from " << context->peer() << ": "
                         << auth.error_message();
    return new RejectBidi<v1::WorkerMessage, v1::CoordinatorMessage>(auth);
  }
  return new WorkStream(&coordinator_->scheduler());
}

grpc::ServerReadReactor<v1::SubmitChunk>* CoordinatorService::Submit(
    grpc::CallbackServerContext* context, v1::SubmitResponse* response) {
  grpc::Status auth = CheckAuth(context, coordinator_->options().token);
  if (!auth.ok()) return new RejectRead<v1::SubmitChunk>(auth);
  return new SubmitUpload(coordinator_, response);
}

grpc::ServerUnaryReactor* CoordinatorService::Status(grpc::CallbackServerContext* context,
                                                     const v1::StatusRequest* request,
                                                     v1::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status auth = CheckAuth(context, coordinator_->options().token);
  if (!auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  if (!request->run_id().empty() && !coordinator_->scheduler().HasRun(request->run_id())) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no run ", request->run_id())));
    return reactor;
  }
  *response = coordinator_->scheduler().Status(request->run_id());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::FileChunk>* CoordinatorService::Fetch(
    grpc::CallbackServerContext* context, const v1::FetchRequest* request) {
  grpc::Status auth = CheckAuth(context, coordinator_->options().token);
  if (!auth.ok()) return new RejectWrite<v1::FileChunk>(auth);
  Scheduler& s = coordinator_->scheduler();
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
  return new FetchStream(&coordinator_->executor(), out->output_dir);
}

}  // namespace medeval
