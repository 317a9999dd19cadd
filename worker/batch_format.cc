#include "worker/batch_format.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "worker/answer_record.h"
#include "worker/chat_backend.h"

namespace medeval {

using json = nlohmann::json;

std::string BatchInputLine(absl::string_view custom_id, absl::string_view body) {
  // The body is spliced in as sent online, byte for byte.
  json head = {{"custom_id", custom_id}, {"method", "POST"}, {"url", kBatchEndpoint}};
  std::string s = head.dump(-1, ' ', false, json::error_handler_t::replace);
  s.pop_back();  // '}'
  absl::StrAppend(&s, ",\"body\":", body, "}");
  return s;
}

absl::StatusOr<BatchLineResult> ParseBatchResultLine(absl::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON object: '", Utf8Prefix(line, 60),
                                                   line.size() > 60 ? "...'" : "'"));
  }
  auto id = j.find("custom_id");
  if (id == j.end() || !id->is_string()) return absl::InvalidArgumentError("no custom_id");
  BatchLineResult r;
  r.custom_id = id->get<std::string>();
  auto err = j.find("error");
  auto resp = j.find("response");
  if (resp != j.end() && resp->is_object()) {
    const int status = resp->value("status_code", 0);
    auto body = resp->find("body");
    std::string body_text = body == resp->end() ? ""
                            : body->is_string() ? body->get<std::string>()
                                                : body->dump();
    if (status >= 200 && status < 300) {
      auto parsed = ParseChatCompletion(body_text);
      if (!parsed.ok()) {
        r.error =
            absl::StrCat("HTTP ", status, " with an unusable body: ", parsed.status().message());
        return r;
      }
      auto answer = AnswerFromCompletion(*parsed);
      if (!answer.ok()) {
        r.error = std::string(answer.status().message());
        r.question_fault = answer.status().code() == absl::StatusCode::kInvalidArgument;
        return r;
      }
      r.answered = true;
      r.record = std::move(*answer);
      return r;
    }
    r.error = absl::StrCat("HTTP ", status, ": ", ServerErrorMessage(body_text));
    r.question_fault = status >= 400 && status < 500 && status != 429 && status != 408;
    return r;
  }
  if (err != j.end() && err->is_object()) {
    r.error = absl::StrCat(err->value("code", std::string("error")), ": ",
                           err->value("message", std::string()));
    return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("custom_id '", r.custom_id, "' has neither a response nor an error"));
}

}  // namespace medeval
