// `medeval compare`: several models' submissions side by side.
//
// The HTML report is one self-contained file (data, styles and scripts
// inline; nothing is fetched when it is opened): a summary table per model
// (completeness, format compliance, consistency, leaks, cut-off answers,
// latency, tokens), SVG charts of the same, the leaderboard from platform
// scores when given, a per-dataset table (compare_tables.h), consensus
// estimates from three models up (consensus.h), and a question browser
// (compare_browser.h): pick a dataset, see each question's own part first,
// every model's answer and the option it chose side by side (reasoning
// folded), filter to disagreements, format violations or inconsistent
// shuffled groups, search the text. The Markdown holds the same tables. The browser
// shows a page of questions at a time, so 10 models x 1,620 questions stay
// responsive. Its state is in the URL (#dataset=..&filter=..&q=..&page=..).
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_COMPARE_REPORT_H_
#define MEDEVAL_AUDIT_COMPARE_REPORT_H_

#include <string>
#include <vector>

#include "audit/auditor.h"
#include "audit/leaderboard.h"

namespace medeval {

struct ModelSummary {
  std::string model;
  int64_t questions = 0;  // expected, else present
  int64_t answered = 0;   // present with a non-empty answer
  int64_t format_checked = 0;
  int64_t format_ok = 0;
  int64_t groups = 0;
  int64_t consistent_groups = 0;
  int64_t leaks = 0;
  int64_t untagged_reasoning = 0;
  int64_t truncated = 0;       // cut off
  double mean_latency_s = -1;  // -1: unknown (no records.jsonl)
  int64_t tokens = -1;
  double cost = -1;  // -1: unknown (no price in manifest.json)
};

ModelSummary Summarize(const AuditReport& report);

// `scores` may be null.
std::string CompareHtml(const std::vector<AuditReport>& reports, const Scores* scores);
std::string CompareMarkdown(const std::vector<AuditReport>& reports, const Scores* scores);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_COMPARE_REPORT_H_
