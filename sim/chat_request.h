// Parsing and checking an OpenAI chat-completions request as the simulated
// model server receives it: what it answers (the last user message), how
// (streaming, usage, max_tokens), and whether its image parts are images a
// vision model could decode.
//
// Thread-safety: free functions without shared state.
#ifndef MEDEVAL_SIM_CHAT_REQUEST_H_
#define MEDEVAL_SIM_CHAT_REQUEST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval::sim {

struct ChatRequest {
  std::string model;
  std::string question;  // text of the last user message (its text parts joined by newlines)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int64_t max_tokens = 0;      // max_tokens or max_completion_tokens; 0: no limit
  uint64_t prompt_chars = 0;   // code points of every message's text
  int images_ok = 0;           // image parts of the last user message that decode
  int images_bad = 0;          // and those that do not
};

// kInvalidArgument with a message for the client (what an OpenAI server
// would say in its 400 body) when the request is malformed.
absl::StatusOr<ChatRequest> ParseChatRequest(absl::string_view body);

// A data URL ("data:image/png;base64,...") whose bytes are an image of the
// type it claims, with a header that declares a real size.
bool ValidImageDataUrl(absl::string_view url);

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_CHAT_REQUEST_H_
