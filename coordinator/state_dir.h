// The coordinator's state directory:
//
//   DIR/LOCK                      held (flock) by the running coordinator
//   DIR/runs/<id>/spec.pb         the RunSpec, written once
//   DIR/runs/<id>/input/...       the suite as submitted (questions, images)
//   DIR/runs/<id>/journal         accepted answers (see journal.h)
//   DIR/runs/<id>/output/...      submission files, zip, records, manifest
//
// A run folder appears atomically (built under a temporary name, then
// renamed), so a crash during submission leaves no half run behind.
//
// Thread-safety: methods are thread-safe (they touch only the file system).
#ifndef MEDEVAL_COORDINATOR_STATE_DIR_H_
#define MEDEVAL_COORDINATOR_STATE_DIR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/run_state.h"
#include "proto/medeval.pb.h"

namespace medeval {

struct UploadedFile {
  std::string path;  // relative to the suite root
  std::string data;
};

class StateDir {
 public:
  // Creates DIR if needed and locks it; kFailedPrecondition if another
  // coordinator holds it.
  static absl::StatusOr<std::unique_ptr<StateDir>> Open(const std::string& dir);
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  const std::string& root() const { return root_; }
  std::string RunDir(const std::string& id) const;
  std::string InputDir(const std::string& id) const;
  std::string OutputDir(const std::string& id) const;
  std::string JournalPath(const std::string& id) const;
  // Rendered PDF pages, shared by every run (keyed by content).
  std::string PdfCacheDir() const;

  // A fresh run id: "YYYYMMDD-HHMMSS-xxxx".
  static std::string NewRunId();

  // Stores `files` under a temporary run folder, lets `finalize` validate them
  // (it gets the input folder and returns the final spec), writes the spec and
  // renames the folder into place. Nothing is left behind on error.
  absl::StatusOr<v1::RunSpec> CreateRun(
      const std::string& run_id, const std::vector<UploadedFile>& files,
      const std::function<absl::StatusOr<v1::RunSpec>(const std::string& input_dir)>& finalize);
  absl::StatusOr<std::vector<std::string>> ListRuns() const;
  absl::StatusOr<v1::RunSpec> ReadSpec(const std::string& id) const;

 private:
  StateDir(std::string root, int lock_fd) : root_(std::move(root)), lock_fd_(lock_fd) {}
  const std::string root_;
  const int lock_fd_;
};

// Loads the suite of an existing run from its input folder (validated as at
// submission) and replays its journal.
absl::StatusOr<LoadedRun> LoadRun(const StateDir& dir, const v1::RunSpec& spec);

// Makes the stored input copies of `spec` whole again: each dataset file whose
// stored copy no longer has the SHA-256 recorded at submission is rewritten
// from `files` (the user's input, submitted again) when that has the recorded
// SHA-256; kFailedPrecondition naming the file otherwise. The restored paths
// go to `*restored`.
absl::Status RestoreInputs(const StateDir& dir, const v1::RunSpec& spec,
                           const std::vector<UploadedFile>& files,
                           std::vector<std::string>* restored);

// The images of a VLM run (nullptr for other tracks).
absl::StatusOr<std::shared_ptr<const RunImages>> LoadRunImages(const StateDir& dir,
                                                               const v1::RunSpec& spec,
                                                               const Suite& suite);

// Loads and validates the suite stored under `input_dir` for `spec` (track,
// datasets). Lines that fail validation are an error unless the spec allows
// skipping them.
absl::StatusOr<Suite> LoadRunSuite(const std::string& input_dir, const v1::RunSpec& spec);

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_STATE_DIR_H_
