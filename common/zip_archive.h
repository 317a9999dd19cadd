// Zip files (libzip): the upload zip the platform takes, and reading zips
// produced by any tool for the audit.
//
// Zips are written reproducibly: fixed entry order and timestamps, so the
// same answers give the same bytes (and the same SHA-256 in the manifest).
// Thread-safe (stateless); one call per archive.
#ifndef MEDEVAL_COMMON_ZIP_ARCHIVE_H_
#define MEDEVAL_COMMON_ZIP_ARCHIVE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace medeval {

struct ZipEntry {
  std::string name;       // path inside the zip, e.g. "MedBench_LLM/MedExam.jsonl"
  std::string file_path;  // file on disk with its contents
};

// Writes `zip_path` atomically with a folder entry for each of `folders`
// ("MedBench_LLM/") and the given files, in the order given.
absl::Status WriteZip(const std::string& zip_path, const std::vector<std::string>& folders,
                      const std::vector<ZipEntry>& entries);

struct ZipMember {
  std::string name;
  std::string data;
  bool is_dir = false;
};

// Every member of the zip with its contents, in archive order.
absl::StatusOr<std::vector<ZipMember>> ReadZip(const std::string& zip_path);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_ZIP_ARCHIVE_H_
