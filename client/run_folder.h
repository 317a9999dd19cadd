// What `medeval run` checks in OUT/<model>/ before it asks anything: that the
// folder can take the results, and that it does not hold another run's
// result that this run would silently replace.
//
// Thread-safety: pure functions over the file system.
#ifndef MEDEVAL_CLIENT_RUN_FOLDER_H_
#define MEDEVAL_CLIENT_RUN_FOLDER_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/suite.h"
#include "proto/medeval.pb.h"

namespace medeval {

// Creates `folder` when missing and checks that results can be written there:
// a folder (not a file), writable, and with names short enough for the file
// system (the folder and the staging folder written beside it). Problems are
// kInvalidArgument naming the folder.
absl::Status CheckOutputFolder(const std::string& folder);

// When `folder` holds the result (manifest.json) of a run other than `spec`'s
// (another idempotency key, and not merely other images of the same VLM
// questions), a sentence saying what it holds; "" otherwise.
// `state_dir` is where the run's specs are kept, for manifests written before
// they carried the run's key.
std::string DescribeOtherResult(const std::string& folder, const v1::RunSpec& spec,
                                const std::string& state_dir);

// Both checks for one model's results in `out_dir` (`run` and `batch
// import` alike): the folder takes results, and holds no other run's result
// unless `replace` (then a note saying what will be replaced goes to
// `note`). The error (kInvalidArgument) is the message to show after
// "medeval: ".
absl::Status CheckResultFolder(const Suite& suite, const v1::RunSpec& spec,
                               const std::string& out_dir, bool replace, std::ostream& note);

// 1620 -> "1,620".
std::string GroupedNumber(uint64_t n);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_RUN_FOLDER_H_
