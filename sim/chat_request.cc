#include "sim/chat_request.h"

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/media_type.h"
#include "common/utf8.h"

namespace medeval::sim {

using json = nlohmann::json;

bool ValidImageDataUrl(absl::string_view url) {
  if (!absl::ConsumePrefix(&url, "data:")) return false;
  size_t comma = url.find(',');
  if (comma == absl::string_view::npos) return false;
  absl::string_view mime = url.substr(0, comma);
  if (!absl::ConsumeSuffix(&mime, ";base64")) return false;
  std::string bytes;
  if (!absl::Base64Unescape(url.substr(comma + 1), &bytes)) return false;
  const MediaType type = SniffMediaType(bytes);
  if (type == MediaType::kPdf || type == MediaType::kUnknown || mime != MimeType(type)) {
    return false;
  }
  return ReadImageSize(bytes).has_value();
}

namespace {

// Fills `out` or returns what is wrong with the request.
std::string Parse(absl::string_view body, ChatRequest* out) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "request body is not valid JSON";
  if (!j.is_object()) return "request body must be a JSON object";
  auto model = j.find("model");
  if (model == j.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
    return "'model' is required and must be a non-empty string";
  }
  out->model = model->get<std::string>();
  auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array() || messages->empty()) {
    return "'messages' must be a non-empty array";
  }
  bool have_user = false;
  for (const json& m : *messages) {
    if (!m.is_object()) return "each message must be an object";
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return "each message needs a string 'role'";
    auto content = m.find("content");
    if (content == m.end()) return "each message needs 'content'";
    std::string text;
    int ok = 0, bad = 0;
    if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      for (const json& part : *content) {
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return "content parts must be objects with a 'type'";
        }
        const std::string& type = part["type"].get_ref<const std::string&>();
        if (type == "text") {
          if (!part.contains("text") || !part["text"].is_string()) {
            return "a text part needs a string 'text'";
          }
          if (!text.empty()) text += "\n";
          text += part["text"].get<std::string>();
        } else if (type == "image_url") {
          const json* url = nullptr;
          if (part.contains("image_url") && part["image_url"].is_object() &&
              part["image_url"].contains("url") && part["image_url"]["url"].is_string()) {
            url = &part["image_url"]["url"];
          }
          if (url == nullptr) return "an image_url part needs image_url.url";
          (ValidImageDataUrl(url->get_ref<const std::string&>()) ? ok : bad)++;
        } else {
          return absl::StrCat("unsupported content part type '", type, "'");
        }
      }
    } else if (!content->is_null()) {
      return "'content' must be a string, an array of parts or null";
    }
    out->prompt_chars += Utf8Length(text);
    if (role->get_ref<const std::string&>() == "user") {
      out->question = std::move(text);
      out->images_ok = ok;
      out->images_bad = bad;
      have_user = true;
    }
  }
  if (!have_user) return "'messages' holds no user message";
  if (auto s = j.find("stream"); s != j.end() && !s->is_null()) {
    if (!s->is_boolean()) return "'stream' must be a boolean";
    out->stream = s->get<bool>();
  }
  if (auto so = j.find("stream_options"); so != j.end() && so->is_object()) {
    auto iu = so->find("include_usage");
    out->include_usage = iu != so->end() && iu->is_boolean() && iu->get<bool>();
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (auto mt = j.find(key); mt != j.end() && !mt->is_null()) {
      if (!mt->is_number_integer() || mt->get<int64_t>() <= 0) {
        return absl::StrCat("'", key, "' must be a positive integer");
      }
      out->max_tokens = mt->get<int64_t>();
    }
  }
  if (auto t = j.find("temperature"); t != j.end() && !t->is_null()) {
    if (!t->is_number() || t->get<double>() < 0 || t->get<double>() > 2) {
      return "'temperature' must be a number between 0 and 2";
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<ChatRequest> ParseChatRequest(absl::string_view body) {
  ChatRequest r;
  std::string error = Parse(body, &r);
  if (!error.empty()) return absl::InvalidArgumentError(error);
  return r;
}

}  // namespace medeval::sim
