// The models file as what the commands run: the embedded run's models
// (endpoint or local server each), or one worker's model.
//
// Thread-safety: pure functions (they read the environment for API keys).
#ifndef MEDEVAL_LOCAL_MODEL_RUNS_H_
#define MEDEVAL_LOCAL_MODEL_RUNS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "local/run_job.h"

namespace medeval {

// One entry as a runnable model. The endpoint (base_url) or the server
// (serve) is required; the key comes from api_key_env or api_key_file only.
absl::StatusOr<ModelRun> ModelRunFromEntry(const ModelConfig& config, const ModelEntry& entry,
                                           absl::Duration retry_base);

absl::StatusOr<std::vector<ModelRun>> ModelRunsFromConfig(const ModelConfig& config,
                                                          absl::Duration retry_base);

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_MODEL_RUNS_H_
