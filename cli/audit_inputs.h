// What `audit` and `compare` read besides their own flags: the reference
// suite of --data (the original questions, to check completeness against),
// --track, and the submissions, each named by its --label where given.
//
// Thread-safety: values and pure functions (reading files).
#ifndef MEDEVAL_CLI_AUDIT_INPUTS_H_
#define MEDEVAL_CLI_AUDIT_INPUTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/submission.h"
#include "common/suite.h"

namespace medeval::cli {

struct AuditInputs {
  std::vector<std::string> paths;
  std::vector<std::string> labels;  // --label, one per path in order
  std::optional<Track> track;
  std::optional<Suite> reference;

  const Track* forced_track() const { return track.has_value() ? &*track : nullptr; }
  const Suite* reference_suite() const { return reference.has_value() ? &*reference : nullptr; }
  // Reads paths[i], named by labels[i] where given.
  absl::StatusOr<Submission> Read(size_t i) const;
};

// Checks --label against the paths and loads --data (its images are not
// checked: answers are audited, not asked). InvalidArgument naming the flag.
absl::StatusOr<AuditInputs> LoadAuditInputs(std::vector<std::string> paths,
                                            std::vector<std::string> labels,
                                            const std::string& track, const std::string& data);

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_AUDIT_INPUTS_H_
