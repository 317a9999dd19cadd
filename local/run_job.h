// `medeval run` (and `demo`): the whole job on one machine. Checks the
// suite, the output folders and each endpoint before the first question,
// starts an embedded cluster (coordinator and local workers on loopback),
// submits one run per model through the same client API as `submit`, waits
// for them with client/wait.h and stops the cluster.
//
// Thread-safety: meant for the command's main thread; `interrupted` may be
// set from a signal-watching thread.
#ifndef MEDEVAL_LOCAL_RUN_JOB_H_
#define MEDEVAL_LOCAL_RUN_JOB_H_

#include <atomic>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/run_spec.h"
#include "client/wait.h"
#include "common/model_config.h"
#include "coordinator/scheduler.h"
#include "local/batch_exit_prompt.h"
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

// Runs everything embedded (coordinator + local workers on loopback).
int RunEmbeddedJob(const RunJobOptions& options, const std::atomic<bool>& interrupted,
                   std::ostream& out, std::ostream& err);

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_RUN_JOB_H_
