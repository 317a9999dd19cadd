// What answer format each MedBench dataset's prompt asks for, as data: one
// table of rules, each with its track, dataset names and a sentence of why.
// Datasets the table does not name get a rule read from their prompt.
//
// An answer complies when it has exactly the shape asked for (after trimming
// surrounding whitespace): "<A>" for a letter in <>, not "< A >" or "<>";
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
  kList,                    // 消化内科、普外科 (separator per rule)
  kFreeText,                // anything non-empty
};

const char* AnswerFormatName(AnswerFormat format);

struct FormatRule {
  std::vector<Track> tracks;
  std::vector<std::string> datasets;
  AnswerFormat format = AnswerFormat::kFreeText;
  std::string separator;  // kList
  std::string why;
};

// The table (documented in the README).
const std::vector<FormatRule>& FormatRules();

// The rule for a dataset: from the table, else read from `sample_question`.
FormatRule RuleFor(Track track, const std::string& dataset, absl::string_view sample_question);

// Empty when `answer` complies with `rule`; otherwise what is wrong. `options`
// (parsed from the question) bound the letters; empty: A-J.
std::string CheckAnswer(const FormatRule& rule, absl::string_view answer,
                        const std::vector<ChoiceOption>& options);

// The one option letter an answer chose, read leniently ("<B>", "< B >",
// "B.", "答案是B"), or nullopt when there is none or more than one.
std::optional<char> ChosenLetter(absl::string_view answer,
                                 const std::vector<ChoiceOption>& options);

// v4 datasets that ask each question several times with shuffled options.
bool HasShuffledRepeats(Track track, const std::string& dataset);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_FORMAT_RULES_H_
