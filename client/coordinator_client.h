// Client of the coordinator's API, used by `submit`, `status`, `fetch` and
// the embedded `run`: uploads a suite as a run, reads progress, downloads a
// finished run's outputs.
//
// Thread-safety: thread-safe (each call uses its own gRPC context).
#ifndef MEDEVAL_CLIENT_COORDINATOR_CLIENT_H_
#define MEDEVAL_CLIENT_COORDINATOR_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_util.h"
#include "common/suite.h"
#include "proto/medeval.grpc.pb.h"

namespace medeval {

class CoordinatorClient {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorClient>> Connect(const std::string& target,
                                                                    const ClientSecurity& security);

  // Uploads the files of `suite` (its dataset files and the images its
  // questions use) and creates a run with `spec`, or resumes the run with the
  // same idempotency key.
  absl::StatusOr<v1::SubmitResponse> Submit(const v1::RunSpec& spec, const Suite& suite);

  absl::StatusOr<v1::StatusResponse> Status(const std::string& run_id,
                                            absl::Duration timeout = absl::Seconds(10));

  // Asks for the status until the coordinator answers, for at most `max_wait`:
  // while it is unreachable or not serving yet (kUnavailable, kDeadlineExceeded)
  // it waits with back-off (0.5 s doubling to 8 s) and tells `on_retry` why and
  // for how long. Any other answer, an error such as a wrong token included,
  // ends the wait and is returned. A coordinator that starts after its clients
  // (a Job beside a StatefulSet) is the case this is for.
  absl::Status WaitUntilAnswering(
      absl::Duration max_wait,
      const std::function<void(const absl::Status&, absl::Duration)>& on_retry = nullptr);

  // Downloads the outputs of a finished run into `dir` (the model's folder),
  // replacing what an earlier fetch put there. Returns the files written.
  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& run_id, const std::string& dir);

  const std::string& target() const { return target_; }

 private:
  CoordinatorClient(std::string target, ClientSecurity security,
                    std::unique_ptr<v1::Coordinator::Stub> stub)
      : target_(std::move(target)), security_(std::move(security)), stub_(std::move(stub)) {}

  // Explains a gRPC failure in the user's terms.
  absl::Status Explain(const grpc::Status& status, const char* what) const;

  const std::string target_;
  const ClientSecurity security_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

// Files of a suite to upload (relative to its root): dataset files, then the
// images referenced by its valid questions, without duplicates.
std::vector<std::string> SuiteFiles(const Suite& suite);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_COORDINATOR_CLIENT_H_
