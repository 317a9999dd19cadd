// A MedBench submission as found on disk, ours or produced by any other
// tool: an upload zip, a submission folder (MedBench_LLM/ with one
// <Dataset>.jsonl per dataset), or a medeval run folder (results/<model>/,
// whose records.jsonl and manifest.json add what the model said beyond the
// answer).
//
// Thread-safety: ReadSubmission is a pure function; a Submission is a value.
#ifndef MEDEVAL_AUDIT_SUBMISSION_H_
#define MEDEVAL_AUDIT_SUBMISSION_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/track.h"

namespace medeval {

struct SubmissionFile {
  std::string name;      // "MedExam.jsonl", legacy "Med-Exam_test.jsonl"
  std::string dataset;   // "MedExam"
  std::string contents;  // raw bytes, as found
};

struct Submission {
  std::string path;          // as given
  std::string label;         // the model: from manifest.json, else the folder or zip name
  std::string label_source;  // "manifest.json", "folder name", "zip name", "--label"
  std::string read_from;     // the folder or zip whose .jsonl files were read
  std::string folder;        // "MedBench_LLM", ...
  Track track = Track::kV4Llm;
  std::vector<SubmissionFile> files;  // sorted by dataset
  // A medeval run folder's extras.
  std::optional<nlohmann::json> manifest;
  // records.jsonl by (dataset, line).
  std::map<std::pair<std::string, uint32_t>, nlohmann::json> records;
  // Lines the run left out as invalid input (--skip-invalid), with why, by
  // (dataset, line): from manifest.json.
  std::map<std::pair<std::string, uint32_t>, std::string> skipped;
};

// Reads PATH; `forced` overrides the track told by the folder name.
absl::StatusOr<Submission> ReadSubmission(const std::string& path, const Track* forced);

// "MedExam.jsonl" -> "MedExam", "Med-Exam_test.jsonl" -> "Med-Exam".
std::string DatasetOfFile(const std::string& name, Track track);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_SUBMISSION_H_
