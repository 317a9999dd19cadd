// The user-facing jobs built on the coordinator API: the embedded
// `medeval run` (and `demo`), and waiting for runs and fetching their files
// (shared with `medeval submit --wait`).
//
// Thread-safety: each function is meant for the command's main thread;
// `interrupted` may be set from a signal-watching thread.
#ifndef MEDEVAL_CLIENT_RUN_JOB_H_
#define MEDEVAL_CLIENT_RUN_JOB_H_

#include <atomic>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/batch_exit_prompt.h"
#include "client/coordinator_client.h"
#include "common/model_config.h"
#include "common/suite.h"
#include "coordinator/scheduler.h"
#include "proto/medeval.pb.h"
#include "worker/batch_runner.h"
#include "worker/chat_backend.h"
#include "worker/model_server.h"

namespace medeval {

// One model to evaluate in an embedded run: an endpoint (backend) or a
// local server to start (serve).
struct ModelRun {
  std::string model;
  BackendConfig backend;
  std::optional<ServeOptions> serve;
  v1::RequestParams params;
  v1::ModelLimits limits;
  v1::ModelPrice price;
  BatchSettings batch;  // enabled: through the provider's Batch API
  int workers = 2;
  int concurrency = kAutoConcurrency;  // per worker, or auto
  int max_concurrency = kDefaultMaxConcurrency;
  bool adaptive_concurrency = false;
};

struct SuiteSelection {
  std::string data_dir;
  std::optional<Track> track;
  std::vector<std::string> datasets;
  bool skip_invalid = false;
  v1::PdfOptions pdf;  // VLM: how PDF reports become pages (0: defaults)
};

struct RunJobOptions {
  SuiteSelection suite;
  bool allow_incomplete_zip = false;
  std::string out_dir = "results";
  // Replace a result of another run found in OUT/<model>/ (otherwise the run
  // refuses to start, kJobBadInput).
  bool replace = false;
  std::vector<ModelRun> models;
  bool tty = false;   // live progress bars
  bool probe = true;  // check each endpoint before starting
  absl::Duration drain_grace = absl::Seconds(3);
  Scheduler::Options scheduler;
  std::string metrics_listen;  // see EmbeddedCluster::Options
  // A model whose endpoint stays down this long stops the run (exit 1, the
  // answers so far saved, no question failed).
  absl::Duration endpoint_down_timeout = absl::Minutes(10);
  // Interrupted with Batch API batches unfinished: asks whether to cancel
  // them (null: each model's --batch-on-exit decides).
  BatchExitPrompt* batch_exit_prompt = nullptr;
};

// Exit codes.
inline constexpr int kJobOk = 0;
inline constexpr int kJobFailed = 1;
inline constexpr int kJobBadInput = 2;
inline constexpr int kJobInterrupted = 130;

// Loads and checks the suite; prints every bad line as "path:line: what" to
// `err`. Returns the exit code to stop with (kJobBadInput), or the suite.
absl::StatusOr<Suite> LoadSuiteForRun(const SuiteSelection& sel, std::ostream& err, int* exit_code);

// The run spec for `suite` and one model (idempotency key included: the same
// model, questions and settings name the same run).
v1::RunSpec MakeRunSpec(const Suite& suite, const std::string& model,
                        const v1::RequestParams& params, const v1::ModelLimits& limits,
                        const SuiteSelection& selection, bool allow_incomplete_zip);

// The request settings MedBench evaluations are published with: system prompt
// "You are a helpful assistant.", temperature 0, no max_tokens.
v1::RequestParams DefaultRequestParams();

// Runs everything embedded (coordinator + local workers on loopback).
int RunEmbeddedJob(const RunJobOptions& options, const std::atomic<bool>& interrupted,
                   std::ostream& out, std::ostream& err);

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
// finished run and prints a summary. Returns the exit code.
int WaitAndFetch(CoordinatorClient& client, const std::vector<std::string>& run_ids,
                 const WaitOptions& options, const std::atomic<bool>& interrupted,
                 std::ostream& out, std::ostream& err);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_RUN_JOB_H_
