// What answer format a MedBench prompt asks for, read from its text: one
// option letter (bare or in <>), several letters ("ABC", "A, C", "<A, C>"), a
// JSON object, or free text. Used by the simulated model (to answer in the
// requested format) and by the audit (for datasets its rules table lacks).
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_COMMON_PROMPT_FORMAT_H_
#define MEDEVAL_COMMON_PROMPT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/choice.h"

namespace medeval {

enum class ChoiceKind { kNone, kSingle, kMulti };

struct PromptFormat {
  ChoiceKind choice = ChoiceKind::kNone;
  bool brackets = false;        // answer inside <>
  std::string multi_separator;  // "" -> "ACD", ", " -> "A, C, D"
  bool json = false;            // the prompt asks for JSON
  bool json_array = false;      // ... a list of objects rather than one object
  std::string json_template;    // the object shown in the prompt, if any
  std::string list_separator;   // a list of items asked for, e.g. "、"
  std::vector<ChoiceOption> options;
};

PromptFormat DetectPromptFormat(absl::string_view question);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_PROMPT_FORMAT_H_
