// Audits one submission, per dataset and in total:
//
//   completeness  expected lines (from the original questions, when given),
//                 present, missing, null or empty answers, lines whose
//                 question/other differ from the input or are out of order,
//                 lines that are not JSON or not UTF-8 (git conflict markers,
//                 files cut short)
//   format        whether each answer has the shape its prompt asks for
//                 (format_rules.h)
//   consistency   for datasets that ask a question several times with
//                 shuffled options: the ids where the model chose the same
//                 option (by its text) every time, read as a reader would
//                 (answer_reading.h); inconsistent and unreadable ids apart
//   leaks         answers still holding <think> tags; reasoning that leaked
//                 without tags; answers cut off (records.jsonl's
//                 finish_reason or truncated flag, else the text)
//
// Line numbers in problems are physical lines of the file read (blank lines
// count); a line that is not there is named by its input line.
//
// Thread-safety: pure function over its inputs.
#ifndef MEDEVAL_AUDIT_AUDITOR_H_
#define MEDEVAL_AUDIT_AUDITOR_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/format_rules.h"
#include "audit/submission.h"
#include "common/suite.h"

namespace medeval {

// One question as answered in the submission.
struct AnsweredLine {
  uint32_t line = 0;       // input line (answer-file line without a reference)
  uint32_t file_line = 0;  // physical line in the answer file; 0: none
  std::string question;
  nlohmann::ordered_json other;
  bool present = false;               // its line is there, matching the input
  std::optional<std::string> answer;  // nullopt: null, absent or not a string
  std::string problem;                // why there is no answer (missing, invalid, ...)
  std::string format_problem;         // empty: complies (or no answer)
  bool leak = false;
  bool untagged_reasoning = false;
  bool truncated = false;  // cut off
  std::string group;       // shuffled-repeat group ("id 7"), if any
  bool group_consistent = true;
  std::string group_state;  // "consistent", "inconsistent", "unreadable"
  // Choice datasets: the option(s) chosen, by letter and text (several
  // options' texts joined by " ＋ "), or why none can be read.
  std::string letters;
  std::string choice;
  std::string choice_why;
  // From records.jsonl, when the submission is a medeval run folder.
  std::string reasoning;
  double latency_s = -1;
  int64_t tokens = -1;
};

struct LineProblem {
  uint32_t line = 0;
  // missing, null, empty, bom, skipped, mismatch, out-of-order, invalid,
  // extra, format, leak, untagged_reasoning, cut_off
  // line 0: the file as a whole ("file missing, 30 questions").
  std::string kind;
  std::string detail;
};

struct DatasetAudit {
  std::string dataset;
  std::string file;           // empty: the file is missing from the submission
  std::string expected_file;  // the name the platform expects ("MedTerm.jsonl")
  FormatRule rule;
  int64_t expected = -1;   // -1: unknown (no original questions given)
  int64_t lines_read = 0;  // non-blank lines of the answer file
  bool bom = false;        // the file starts with a UTF-8 byte order mark
  int64_t present = 0;
  int64_t missing = 0;
  int64_t null_or_empty = 0;
  // Unanswered because the run left the line out as invalid input
  // (--skip-invalid, listed in manifest.json): known, not a failure, but the
  // platform will score them as wrong.
  int64_t skipped = 0;
  int64_t mismatched = 0;
  int64_t invalid = 0;
  int64_t extra = 0;
  int64_t format_checked = 0;
  int64_t format_ok = 0;
  bool repeats = false;  // asks questions several times with shuffled options
  int64_t groups = 0;
  int64_t consistent_groups = 0;
  int64_t unreadable_groups = 0;  // some answer in it names no single option
  std::vector<std::string> consistent_ids, inconsistent_ids, unreadable_ids;
  int64_t leaks = 0;
  int64_t untagged_reasoning = 0;
  int64_t truncated = 0;  // cut off
  std::vector<LineProblem> problems;
  std::vector<AnsweredLine> lines;

  bool complete() const;
};

struct AuditReport {
  std::string path;
  std::string label;
  std::string label_source;
  std::string read_from;
  std::string folder;
  Track track = Track::kV4Llm;
  bool has_reference = false;
  std::vector<DatasetAudit> datasets;
  std::vector<std::string> notes;
  double cost = -1;  // manifest.json's cost.total; -1: unknown

  // Every dataset complete and well-formed; `strict` also wants every answer
  // in its format, no reasoning leaks (tagged or not), no answer cut off, no
  // byte order mark and no skipped questions.
  bool ok(bool strict) const;
};

// `reference` (the original questions) may be null.
AuditReport Audit(const Submission& submission, const Suite* reference);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_AUDITOR_H_
