// Multiple-choice questions: the lettered options of a question text.
//
// MedBench prompts often carry a worked example with its own options before
// the real question, and some write options inline ("A.xxB.yyC.zz"); the
// options returned are the last run of consecutive letters A, B, C, ...,
// read to its end (any letter up to Z: DDx-advanced lists up to L). An option
// letter at a line start may run straight into its text ("D《纽伦堡法典》")
// when the rest of the chain has separators.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_CHOICE_H_
#define MEDEVAL_COMMON_CHOICE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace medeval {

struct ChoiceOption {
  char letter;       // 'A'..
  std::string text;  // trimmed option text
};

// Options of the question (empty when fewer than two are found).
std::vector<ChoiceOption> ParseOptions(absl::string_view question);

// The question text before its options (the stem), trimmed.
std::string QuestionStem(absl::string_view question);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_CHOICE_H_
