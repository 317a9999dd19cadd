// The Coordinator gRPC service on the callback API. Reactors only translate
// messages into scheduler calls and back; anything that touches the disk
// runs on the coordinator's executor.
//
// Every reaction and every task it posts ends its call on any error (an
// exception included), so a server shutdown completes: open calls finish, or
// end when gRPC cancels them at the shutdown deadline.
//
// Thread-safety: gRPC calls the reactors; each reactor keeps one write in
// flight and guards its outgoing queue with its own mutex, always taken after
// (never around) the scheduler's. open_calls() is thread-safe.
//
// The service sees only its Backend, never the Coordinator that owns it, so
// the dependency goes one way: the coordinator builds and owns the service.
#ifndef MEDEVAL_COORDINATOR_SERVICE_H_
#define MEDEVAL_COORDINATOR_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/state_dir.h"
#include "proto/medeval.grpc.pb.h"

namespace medeval {

class Executor;
class Scheduler;

class CoordinatorService final : public v1::Coordinator::CallbackService {
 public:
  // What the calls need from the coordinator; everything outlives the service.
  struct Backend {
    std::string token;              // empty: no token required
    uint64_t max_upload_bytes = 0;  // largest accepted submission
    Scheduler* scheduler = nullptr;
    Executor* executor = nullptr;  // disk work, off the gRPC threads
    // Creates a run from a complete upload; blocks on disk I/O, so the
    // service calls it on `executor`.
    std::function<absl::StatusOr<v1::SubmitResponse>(v1::RunSpec, std::vector<UploadedFile>)>
        create_run;
  };
  explicit CoordinatorService(Backend backend);

  enum CallKind { kWorker = 0, kUpload = 1, kFetch = 2 };
  struct CallCounts {
    std::atomic<int> open[3] = {0, 0, 0};
    std::atomic<int> cancelled{0};  // ended by cancellation (client gone, shutdown)
  };
  struct OpenCalls {
    int workers = 0;
    int uploads = 0;
    int fetches = 0;
    int cancelled = 0;
  };
  // Calls open now (counted until their reactor is done), and how many calls
  // were cancelled so far.
  OpenCalls open_calls() const;

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Work(
      grpc::CallbackServerContext* context) override;
  grpc::ServerReadReactor<v1::SubmitChunk>* Submit(grpc::CallbackServerContext* context,
                                                   v1::SubmitResponse* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;
  grpc::ServerWriteReactor<v1::FileChunk>* Fetch(grpc::CallbackServerContext* context,
                                                 const v1::FetchRequest* request) override;

 private:
  const Backend backend_;
  CallCounts calls_;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_SERVICE_H_
