// The comparison report's per-dataset tables, in HTML and in Markdown alike:
// each model's answered, in-format, consistent, cut-off and untagged-reasoning
// counts per dataset with the problems behind a short line, and the
// consensus estimates (consensus.h) per dataset and overall.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_COMPARE_TABLES_H_
#define MEDEVAL_AUDIT_COMPARE_TABLES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "audit/auditor.h"
#include "audit/consensus.h"

namespace medeval {

// "file missing", "3 missing, 1 invalid", "" when nothing is wrong.
std::string DatasetProblems(const DatasetAudit& d);

std::string DatasetTableHtml(const std::vector<AuditReport>& reports);
std::string DatasetTableMarkdown(const std::vector<AuditReport>& reports);

// Empty when the consensus was not computed (fewer than three models) but
// for a line saying so.
std::string ConsensusHtml(const ConsensusReport& c);
std::string ConsensusMarkdown(const ConsensusReport& c);

// HTML-escaped text.
std::string HtmlEscape(absl::string_view s);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_COMPARE_TABLES_H_
