// The MedBench tracks and how each lays out its questions and its upload.
//
// Thread-safe (pure functions and constants).
#ifndef MEDEVAL_COMMON_TRACK_H_
#define MEDEVAL_COMMON_TRACK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

enum class Track { kV4Llm, kV4Agent, kV4Vlm, kLegacyLlm };

// "v4-llm", "v4-agent", "v4-vlm", "legacy-llm".
absl::string_view TrackName(Track track);
absl::StatusOr<Track> ParseTrack(absl::string_view name);

// The folder inside the upload zip: MedBench_LLM, MedBench_Agent,
// MedBench_VLM_QA, MedBench.
absl::string_view SubmissionFolder(Track track);

// One dataset file of a suite.
struct DatasetFile {
  std::string name;         // "MedExam"
  std::string input_path;   // relative to the suite root: "MedExam.jsonl"
  std::string output_name;  // inside the submission folder: "MedExam.jsonl"
};

struct SuiteLayout {
  Track track;
  // The folder the files' input paths are relative to: --data itself, or its
  // parent when --data is one legacy dataset folder.
  std::string root;
  std::vector<DatasetFile> files;  // sorted by name
  // Files seen and not read (hidden files, the platform's example
  // submission, names that only look like dataset files), said to the user.
  std::vector<std::string> notes;
};

// Finds the dataset files under `root`: a folder of <Dataset>.jsonl is v4 (the
// track told by the dataset names, or `forced`), a folder of
// <Dataset>/<Dataset>_test.jsonl is legacy, and so is one such <Dataset>
// folder on its own. `only` keeps the named datasets (unknown names are an
// error). With `forced`, datasets the platform publishes in another track are
// an error; with `known_names_only` and no `forced`, so are names no track
// publishes (a question is never sent as the wrong track). Data files are
// read only when they are regular files inside the folder (links resolved).
// Errors are kInvalidArgument or kNotFound with a message that says what to
// pass instead.
absl::StatusOr<SuiteLayout> DetectSuite(const std::string& root, const Track* forced,
                                        const std::vector<std::string>& only,
                                        bool known_names_only = false);

// Dataset names the platform publishes per v4 track (used for detection).
bool IsKnownV4LlmDataset(absl::string_view name);
bool IsKnownV4AgentDataset(absl::string_view name);
bool IsKnownV4VlmDataset(absl::string_view name);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_TRACK_H_
