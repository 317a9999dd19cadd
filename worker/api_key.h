// Where a worker's model API key comes from. Keys are read here, on the
// worker, and never travel to the coordinator.
//
// Thread-safety: reads the environment and files; no shared state.
#ifndef MEDEVAL_WORKER_API_KEY_H_
#define MEDEVAL_WORKER_API_KEY_H_

#include <string>

#include "absl/status/statusor.h"

namespace medeval {

// From `file` or the variable `env` (whichever is given; it must then hold a
// key), else, with `fallbacks`, API_TOKEN then OPENAI_API_KEY, else none ("").
absl::StatusOr<std::string> ResolveApiKey(const std::string& env, const std::string& file,
                                          bool fallbacks);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_API_KEY_H_
