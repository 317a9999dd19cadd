#include "worker/answer_record.h"

#include "absl/strings/str_cat.h"
#include "common/reasoning.h"
#include "common/utf8.h"

namespace medeval {

absl::StatusOr<v1::AnswerRecord> AnswerFromCompletion(const ChatCompletion& c) {
  ReasoningSplit split = SplitReasoning(c.content);
  const std::string empty_why = EmptyAnswerReason(c, split.answer);
  if (!empty_why.empty()) {
    if (c.finish_reason == "length") {
      // The same request stops at the same place again.
      return absl::InvalidArgumentError(
          absl::StrCat(empty_why,
                       " (finish_reason length: max_tokens ran out before the answer; "
                       "raise or unset --max-tokens)"));
    }
    return absl::UnavailableError(empty_why);
  }
  v1::AnswerRecord r;
  r.set_raw_text(c.content);
  r.set_answer(split.answer);
  std::string reasoning = c.reasoning_field;
  if (!split.reasoning.empty()) {
    reasoning =
        reasoning.empty() ? split.reasoning : absl::StrCat(reasoning, "\n\n", split.reasoning);
  }
  r.set_reasoning(reasoning);
  for (const auto& f : split.flags) r.add_flags(f);
  if (!c.reasoning_field.empty()) r.add_flags("reasoning_field");
  if (c.finish_reason == "length") r.add_flags(std::string(kFlagTruncated));
  if (c.invalid_utf8 > 0) r.add_flags(std::string(kFlagInvalidUtf8));
  r.set_finish_reason(c.finish_reason);
  r.set_served_model(c.model);
  r.set_system_fingerprint(c.system_fingerprint);
  r.set_request_id(c.id);
  r.set_prompt_tokens(c.prompt_tokens);
  r.set_completion_tokens(c.completion_tokens);
  r.set_total_tokens(c.total_tokens);
  return r;
}

}  // namespace medeval
