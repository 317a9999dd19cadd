// A MedBench suite loaded from disk: its datasets and their questions, every
// input line parsed and checked before anything is asked.
//
// Questions are stored compactly (one text arena per dataset) because a
// coordinator may hold millions of them. A loaded Suite is immutable and safe
// to read from many threads.
#ifndef MEDEVAL_COMMON_SUITE_H_
#define MEDEVAL_COMMON_SUITE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/track.h"

namespace medeval {

// One problem with an input line, printed as "path:line: message".
struct InputIssue {
  std::string path;
  uint32_t line = 0;  // 0: the file as a whole
  std::string message;
  // Image files the line names that do exist: a submission carries them so
  // the coordinator finds the same problem (a damaged image, not a missing one).
  std::vector<std::string> files;
  std::string ToString() const;
};

class Dataset {
 public:
  DatasetFile file;
  std::string sha256;              // of the input file's bytes
  uint32_t line_count = 0;         // physical lines, blank ones included
  uint32_t blank_lines = 0;        // not questions; left out of the upload files
  std::vector<InputIssue> issues;  // lines that are not asked

  size_t size() const { return refs_.size(); }
  uint32_t line(size_t i) const { return refs_[i].line; }
  absl::string_view question(size_t i) const {
    return absl::string_view(arena_).substr(refs_[i].offset, refs_[i].length);
  }
  // img_path entries of question i, in order (VLM track only).
  std::vector<absl::string_view> images(size_t i) const;

  void Add(uint32_t line, absl::string_view question, const std::vector<std::string>& images);
  void ShrinkToFit();

 private:
  struct Ref {
    uint32_t line;
    uint32_t image_begin;
    uint64_t offset;
    uint32_t length;
    uint32_t image_count;
  };
  std::string arena_;
  std::vector<Ref> refs_;
  std::vector<std::string> image_paths_;
};

struct Suite {
  std::string root;
  Track track = Track::kV4Llm;
  std::vector<Dataset> datasets;
  // Files seen and not read, and other things the user should know (see
  // SuiteLayout::notes).
  std::vector<std::string> notes;
  // SHA-256 of every image and PDF the asked questions use, by img_path
  // entry: part of what the model is asked, so part of the run's identity.
  std::map<std::string, std::string> image_sha256;

  size_t question_count() const;
  // Every issue of every dataset, in file and line order.
  std::vector<InputIssue> issues() const;
};

struct LoadOptions {
  const Track* forced_track = nullptr;
  std::vector<std::string> only_datasets;
  // VLM: check that every img_path names a readable file under the root.
  bool check_images = true;
  // Names no MedBench track publishes are an error unless the track is
  // forced (see DetectSuite).
  bool known_names_only = false;
};

// Loads and validates the suite under `root`. Bad lines do not fail the load;
// they are listed in each dataset's `issues` and left out of its questions so
// the caller can refuse to start or proceed with --skip-invalid. A missing
// folder or unreadable file is an error status.
absl::StatusOr<Suite> LoadSuite(const std::string& root, const LoadOptions& options);

// Checks one input line. On success fills `question` and `images` and returns
// an empty string; otherwise returns what is wrong (without path and line).
std::string ValidateLine(absl::string_view line, bool vlm, std::string* question,
                         std::vector<std::string>* images);

// True for a line holding only whitespace: such lines carry no question and
// are left out of the upload files.
bool IsBlankLine(absl::string_view line);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_SUITE_H_
