// A coordinator on a loopback port in this process, with hand-made gRPC
// clients: raw worker streams (any hello, any result) and a suite to submit.
//
// Not thread-safe.
#ifndef MEDEVAL_TESTS_COORDINATOR_LIVE_COORDINATOR_H_
#define MEDEVAL_TESTS_COORDINATOR_LIVE_COORDINATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/coordinator_client.h"
#include "coordinator/coordinator.h"
#include "tests/testing/test_util.h"

namespace medeval::testing {

// One worker stream driven by hand.
class RawWorker {
 public:
  RawWorker(v1::Coordinator::Stub* stub, const v1::WorkerMessage& first,
            absl::Duration deadline = absl::Seconds(30));
  bool Send(const v1::WorkerMessage& m) { return rw_->Write(m); }
  // The next message; false when the stream ended.
  bool Read(v1::CoordinatorMessage* m) { return rw_->Read(m); }
  // Reads until `n` leases arrived in all (or the stream ended); returns the
  // leases read, and counts acks on the way.
  std::vector<v1::Lease> ReadLeases(size_t n);
  // Reads until `n` acks arrived in all; collects leases on the way.
  bool ReadAcks(int n);
  grpc::Status Finish();
  int acks() const { return acks_; }
  std::vector<v1::Lease>& leases() { return leases_; }
  grpc::ClientContext& context() { return ctx_; }

 private:
  void Note(const v1::CoordinatorMessage& m);
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> rw_;
  int acks_ = 0;
  std::vector<v1::Lease> leases_;
};

class LiveCoordinator {
 public:
  explicit LiveCoordinator(const std::string& state_dir, Coordinator::Options o = {});
  Coordinator& coordinator() { return *coordinator_; }
  void Shutdown() { coordinator_->Shutdown(); }
  // Restarts on the same state directory.
  void Restart();
  std::string target() const;
  v1::Coordinator::Stub* stub() { return stub_.get(); }
  CoordinatorClient& client() { return *client_; }

  // Submits `n` synthetic questions (one dataset "D") for `model`.
  absl::StatusOr<v1::SubmitResponse> SubmitSynthetic(const std::string& dir, int n,
                                                     const std::string& model,
                                                     const std::string& key);
  v1::RunStatus RunStatus(const std::string& run_id);
  int RunCount();
  // Folders under state_dir/runs.
  std::vector<std::string> RunFolders();

  static v1::WorkerMessage Hello(const std::string& name, const std::string& model, int inflight,
                                 const std::string& instance = "i1");
  static v1::WorkerMessage Answer(const v1::Lease& l, const std::string& text,
                                  const std::string& worker = "");

 private:
  void Connect();
  std::string state_dir_;
  Coordinator::Options options_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::unique_ptr<CoordinatorClient> client_;
};

}  // namespace medeval::testing

#endif  // MEDEVAL_TESTS_COORDINATOR_LIVE_COORDINATOR_H_
