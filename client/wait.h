// Waiting for runs at a coordinator and collecting their results: live
// progress until each run is finished (or stopped, or interrupted), then its
// files fetched into OUT/<model>/ and a summary with what the user must know
// (failed questions, answers cut off, a swapped model, the cost). Used by
// `medeval submit --wait` against a remote coordinator and by `medeval run`
// against its embedded one.
//
// Thread-safety: meant for the command's main thread; `interrupted` may be
// set from a signal-watching thread.
#ifndef MEDEVAL_CLIENT_WAIT_H_
#define MEDEVAL_CLIENT_WAIT_H_

#include <atomic>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/coordinator_client.h"
#include "proto/medeval.pb.h"

namespace medeval {

struct WaitOptions {
  std::string out_dir;   // fetch finished runs into out_dir/<model>/
  std::string data_dir;  // the suite folder, to name input lines
  bool tty = false;
  // Why a model's runs cannot progress (all its workers failed), or OK.
  std::function<absl::Status(const std::string& model)> model_error;
  // The runs live at a remote coordinator (`submit --wait`): stopping the
  // wait does not stop them.
  bool remote = false;
  // How long a model may have no worker before the user is told to start one.
  absl::Duration no_worker_notice = absl::Seconds(5);
  // Stop waiting for a run whose endpoint has been down this long
  // (distributed runs wait: infinite).
  absl::Duration endpoint_down_timeout = absl::InfiniteDuration();
};

// "no worker for model X has connected; start one with `medeval worker
// --model X ...`" when `model` has no connected worker in `status`, else "".
std::string NoWorkerNotice(const std::string& model, const v1::StatusResponse& status);

// Shows progress until every run is finished (or interrupted), fetches each
// finished run and prints a summary. Returns the exit code (kJob*).
int WaitAndFetch(CoordinatorClient& client, const std::vector<std::string>& run_ids,
                 const WaitOptions& options, const std::atomic<bool>& interrupted,
                 std::ostream& out, std::ostream& err);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_WAIT_H_
