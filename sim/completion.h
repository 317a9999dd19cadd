// One simulated chat completion, as both the online endpoint and the Batch
// API answer it: the answer model's text for the request's question, cut to
// max_tokens (finish_reason "length"), with the usage the server reports
// (a token is a code point, so tests can recompute every figure). With
// AnswerStyle::completion_tokens, a short answer also "thought" in hidden
// reasoning tokens up to that length (never past max_tokens); they count in
// usage.completion_tokens and completion_tokens_details.reasoning_tokens.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_SIM_COMPLETION_H_
#define MEDEVAL_SIM_COMPLETION_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/answer_model.h"
#include "sim/chat_request.h"

namespace medeval::sim {

struct SimCompletion {
  std::string content;
  std::string reasoning_content;
  std::string finish_reason = "stop";
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;        // visible and hidden
  int64_t hidden_reasoning_tokens = 0;  // AnswerStyle::completion_tokens' padding
};

SimCompletion Complete(const ChatRequest& request, const AnswerStyle& style);

// The non-streaming chat.completion body.
nlohmann::json CompletionBody(const SimCompletion& c, const std::string& id,
                              const std::string& model, int64_t created_unix_s);

// The usage object.
nlohmann::json UsageJson(const SimCompletion& c);

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_COMPLETION_H_
