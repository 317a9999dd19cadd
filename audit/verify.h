// Checks a published run folder against its manifest.json: recomputes the
// SHA-256 of every output file the manifest names (and, with the original
// questions, of every input) and reports files that changed or are gone.
//
// Thread-safety: pure function (reads files).
#ifndef MEDEVAL_AUDIT_VERIFY_H_
#define MEDEVAL_AUDIT_VERIFY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medeval {

struct VerifiedFile {
  std::string path;   // as named in the manifest
  std::string kind;   // "output" or "input"
  std::string state;  // "ok", "changed", "missing"
  std::string expected;
  std::string actual;
};

struct VerifyResult {
  std::string manifest;
  std::vector<VerifiedFile> files;
  bool ok() const;
};

// `dir` holds manifest.json; `data_dir` (optional) holds the inputs.
absl::StatusOr<VerifyResult> VerifyRun(const std::string& dir, const std::string& data_dir);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_VERIFY_H_
