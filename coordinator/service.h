// The Coordinator gRPC service on the callback API. Reactors only translate
// messages into scheduler calls and back; anything that touches the disk
// runs on the coordinator's executor.
//
// Thread-safety: gRPC calls the reactors; each reactor keeps one write in
// flight and guards its outgoing queue with its own mutex, always taken after
// (never around) the scheduler's.
#ifndef MEDEVAL_COORDINATOR_SERVICE_H_
#define MEDEVAL_COORDINATOR_SERVICE_H_

#include <string>

#include "proto/medeval.grpc.pb.h"

namespace medeval {

class Coordinator;

class CoordinatorService final : public v1::Coordinator::CallbackService {
 public:
  explicit CoordinatorService(Coordinator* coordinator);

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
  Coordinator* const coordinator_;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_SERVICE_H_
