// What the simulated model answers: a deterministic function of (model,
// question, seed), so a test can recompute the expected answer of every
// question and prove none was lost, duplicated or attached to the wrong one.
//
// The answer follows the format the prompt asks for: one option letter (bare
// or in <>), several letters ("ACD", "<A, C>"), a JSON object, or short text.
// The chosen option depends on the option's text, not its letter, so the model
// is consistent when MedBench re-asks a question with shuffled options.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_SIM_ANSWER_MODEL_H_
#define MEDEVAL_SIM_ANSWER_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/prompt_format.h"

namespace medeval::sim {

struct AnswerStyle {
  uint64_t seed = 0;
  bool think = false;                // prefix a <think>...</think> block
  bool reasoning_field = false;      // put the reasoning in reasoning_content
  double format_violation_rate = 0;  // answer in prose instead of the format
  double flip_rate = 0;  // choose by option position instead of text (inconsistent model)
  // Answers shorter than this many tokens are made up to it with hidden
  // reasoning tokens (counted in usage, like a reasoning model's), so the
  // batching engine has a realistic generation length; 0: none.
  int64_t completion_tokens = 0;
};

struct SimAnswer {
  std::string content;
  std::string reasoning_content;  // set only with reasoning_field
  bool violates_format = false;
};

// The answer of `model` to `question` (the last user message).
SimAnswer AnswerQuestion(absl::string_view model, absl::string_view question,
                         const AnswerStyle& style);

// The key the server's statistics use for a question (16 hex digits).
std::string QuestionKey(absl::string_view question);

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_ANSWER_MODEL_H_
