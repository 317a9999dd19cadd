// What answer format each MedBench dataset's prompt asks for, as data: one
// table of rules, each with its track, dataset names and a sentence of why.
// Datasets the table does not name get a rule read from their prompt.
//
// The table was checked against every question body, not only the task
// headers; where a prompt asks for two shapes, both comply and the rule's
// `why` says so.
//
// An answer complies when it has exactly the shape asked for (after trimming
// surrounding whitespace of any kind): "<A>" for a letter in <>, not "< A >";
// "ABC" for several letters; a JSON object (optionally in one ```json fence)
// where JSON is required; items joined by the separator the prompt names.
//
// Thread-safety: immutable data and pure functions.
#ifndef MEDEVAL_AUDIT_FORMAT_RULES_H_
#define MEDEVAL_AUDIT_FORMAT_RULES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/choice.h"
#include "common/track.h"

namespace medeval {

enum class AnswerFormat {
  kLetter,                  // A
  kLetterInBrackets,        // <A>
  kLetters,                 // ACD
  kLettersComma,            // A,C,D (spaces allowed after commas)
  kLettersInBracketsComma,  // <A, C, D>
  kJsonObject,              // {"诊断": "..."}
  kJsonArray,               // [{...}, {...}]
  // MedReportQC: a JSON object, or a list of objects with `item_keys`.
  kJsonObjectOrList,
  // Lines "label：…" for each of `labels` in order ("诊断：…\n诊断依据：…"),
  // or a JSON object with those keys.
  kFields,
  kList,      // 消化内科、普外科 (separator per rule)
  kFreeText,  // anything non-empty
};

const char* AnswerFormatName(AnswerFormat format);

struct FormatRule {
  std::vector<Track> tracks;
  std::vector<std::string> datasets;
  AnswerFormat format = AnswerFormat::kFreeText;
  std::string separator;  // kList
  std::string why;
  std::vector<std::string> labels;     // kFields
  std::vector<std::string> item_keys;  // kJsonObjectOrList: keys of a list item
};

// The table (documented in the README).
const std::vector<FormatRule>& FormatRules();

// The rule for a dataset: from the table, else read from `sample_question`.
FormatRule RuleFor(Track track, const std::string& dataset, absl::string_view sample_question);

// Empty when `answer` complies with `rule`; otherwise what is wrong. `options`
// (parsed from the question) bound the letters; empty: A-J. (Whitespace-only
// answers are "empty answer"; the auditor reports them before this check.)
std::string CheckAnswer(const FormatRule& rule, absl::string_view answer,
                        const std::vector<ChoiceOption>& options);

// Datasets that ask each question several times with shuffled options: v4
// MedExam, MedSafety, MedEthics, MedRxCheck_SCQ; legacy Med-Exam, DrugCA,
// MedSafety.
bool HasShuffledRepeats(Track track, const std::string& dataset);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_FORMAT_RULES_H_
