#include "sim/completion.h"

#include <algorithm>

#include "common/utf8.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;

// The first `max_chars` code points of `s`.
std::string Truncate(const std::string& s, int64_t max_chars) {
  size_t i = 0;
  int64_t chars = 0;
  while (i < s.size() && chars < max_chars) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    ++chars;
  }
  return s.substr(0, i);
}

}  // namespace

SimCompletion Complete(const ChatRequest& request, const AnswerStyle& style) {
  SimAnswer a = AnswerQuestion(request.model, request.question, style);
  SimCompletion c;
  if (request.max_tokens > 0) {
    const int64_t budget = request.max_tokens;
    const int64_t reasoning_len = static_cast<int64_t>(Utf8Length(a.reasoning_content));
    if (reasoning_len >= budget) {
      a.reasoning_content = Truncate(a.reasoning_content, budget);
      a.content.clear();
      c.finish_reason = "length";
    } else if (static_cast<int64_t>(Utf8Length(a.content)) > budget - reasoning_len) {
      a.content = Truncate(a.content, budget - reasoning_len);
      c.finish_reason = "length";
    }
  }
  c.content = std::move(a.content);
  c.reasoning_content = std::move(a.reasoning_content);
  c.prompt_tokens = static_cast<int64_t>(request.prompt_chars);
  c.completion_tokens =
      static_cast<int64_t>(Utf8Length(c.content) + Utf8Length(c.reasoning_content));
  int64_t target = style.completion_tokens;
  if (request.max_tokens > 0) target = std::min(target, request.max_tokens);
  if (c.completion_tokens < target) {
    c.hidden_reasoning_tokens = target - c.completion_tokens;
    c.completion_tokens = target;
  }
  return c;
}

json UsageJson(const SimCompletion& c) {
  json usage = {{"prompt_tokens", c.prompt_tokens},
                {"completion_tokens", c.completion_tokens},
                {"total_tokens", c.prompt_tokens + c.completion_tokens}};
  if (c.hidden_reasoning_tokens > 0) {
    usage["completion_tokens_details"] = {{"reasoning_tokens", c.hidden_reasoning_tokens}};
  }
  return usage;
}

json CompletionBody(const SimCompletion& c, const std::string& id, const std::string& model,
                    int64_t created_unix_s) {
  json message = {{"role", "assistant"}};
  message["content"] =
      (c.content.empty() && c.finish_reason == "length") ? json(nullptr) : json(c.content);
  if (!c.reasoning_content.empty()) message["reasoning_content"] = c.reasoning_content;
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created_unix_s},
          {"model", model},
          {"choices", json::array({{{"index", 0},
                                    {"message", message},
                                    {"logprobs", nullptr},
                                    {"finish_reason", c.finish_reason}}})},
          {"usage", UsageJson(c)}};
}

}  // namespace medeval::sim
