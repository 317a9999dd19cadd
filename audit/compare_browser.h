// The data of the comparison report's question browser (compare_report.h),
// kept small enough for 10 models x 1,620 questions:
//
//   per dataset  name, format and why; the text every question of the
//                dataset shares (instructions, worked example) once, as a
//                prefix and suffix cut at line boundaries
//   per question its own part of the text, id, whether it is a shuffled
//                repeat, and the consensus option when there is one
//   per answer   [text or null, format problem, flags, reasoning (capped),
//                 chosen option ("C · 甲"), note: why the line is missing or
//                 invalid, why no option can be read, or what the other
//                 shuffles of an inconsistent group chose]
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_COMPARE_BROWSER_H_
#define MEDEVAL_AUDIT_COMPARE_BROWSER_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "audit/auditor.h"
#include "audit/consensus.h"

namespace medeval {

inline constexpr int kFlagMissing = 1, kFlagLeak = 2, kFlagTruncated = 4, kFlagInconsistent = 8,
                     kFlagUntagged = 16, kFlagUnreadable = 32;

// Bytes of `texts` that all share at the start and at the end, each cut back
// to a line boundary (and to whole UTF-8 sequences); both 0 for fewer than
// two texts.
struct SharedParts {
  size_t prefix = 0;
  size_t suffix = 0;
};
SharedParts FindSharedParts(const std::vector<absl::string_view>& texts);

nlohmann::json BrowserData(const std::vector<AuditReport>& reports,
                           const ConsensusReport& consensus);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_COMPARE_BROWSER_H_
