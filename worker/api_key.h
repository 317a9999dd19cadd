// Where a worker's model API key comes from. Keys are read here, on the
// worker, and never travel to the coordinator.
//
// Thread-safety: reads the environment and files; no shared state.
#ifndef MEDEVAL_WORKER_API_KEY_H_
#define MEDEVAL_WORKER_API_KEY_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace medeval {

// From `file` or the variable `env` (whichever is given; it must then hold a
// key), else, with `fallbacks`, API_TOKEN then OPENAI_API_KEY, else none ("").
absl::StatusOr<std::string> ResolveApiKey(const std::string& env, const std::string& file,
                                          bool fallbacks);

// The worker's own headers: `fixed` as given, then each of `from_env`
// (header name -> variable) with the variable's value. kInvalidArgument
// names the header and the variable when it is unset or holds a line break
// (never the value).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ResolveWorkerHeaders(
    const std::map<std::string, std::string>& fixed,
    const std::map<std::string, std::string>& from_env);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_API_KEY_H_
