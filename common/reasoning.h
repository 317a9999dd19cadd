// Separates a reasoning model's thinking from its answer. The submitted answer
// is the message text with a leading <think>...</think> block removed; nothing
// else is rewritten.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_REASONING_H_
#define MEDEVAL_COMMON_REASONING_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace medeval {

// Flags recorded in records.jsonl.
inline constexpr absl::string_view kFlagThinkBlock = "think_block_removed";
// "<think>" with no "</think>": the answer is submitted as is.
inline constexpr absl::string_view kFlagThinkUnterminated = "think_unterminated";
// "...</think>answer" without the opening tag (chat templates that put
// "<think>" in the prompt): the text before the tag is the reasoning.
inline constexpr absl::string_view kFlagThinkOpenMissing = "think_open_tag_missing";
// finish_reason "length": the model stopped at max_tokens.
inline constexpr absl::string_view kFlagTruncated = "truncated";
// The answer still holds a think tag after the leading block was removed.
inline constexpr absl::string_view kFlagThinkLeak = "think_tag_in_answer";
// The response held invalid UTF-8, kept with U+FFFD in place of each bad
// sequence.
inline constexpr absl::string_view kFlagInvalidUtf8 = "invalid_utf8";

struct ReasoningSplit {
  std::string answer;
  std::string reasoning;  // without the tags
  std::vector<std::string> flags;
};

ReasoningSplit SplitReasoning(absl::string_view content);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_REASONING_H_
