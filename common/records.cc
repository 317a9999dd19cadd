#include "common/records.h"

#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace medeval {

std::string ModelFolderName(absl::string_view model) {
  std::string name = absl::StrReplaceAll(model, {{"/", "_"}, {"\\", "_"}});
  if (name.empty() || name == "." || name == "..") name = "_" + name;
  return name;
}

std::string IsoTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

bool IsTruncated(const v1::AnswerRecord& record) { return record.finish_reason() == "length"; }

nlohmann::ordered_json RecordJson(absl::string_view dataset, uint32_t line,
                                  const nlohmann::ordered_json& other, const v1::AnswerRecord& r,
                                  bool failed, const std::vector<absl::string_view>& images) {
  nlohmann::ordered_json j;
  j["dataset"] = std::string(dataset);
  j["line"] = line;
  j["other"] = other;
  if (!images.empty()) {
    j["images"] = nlohmann::ordered_json::array();
    for (absl::string_view p : images) j["images"].push_back(std::string(p));
  }
  j["status"] = failed ? "failed" : "answered";
  j["answer"] = failed ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.answer());
  j["raw_text"] = r.raw_text();
  j["reasoning"] = r.reasoning();
  j["finish_reason"] = r.finish_reason();
  j["usage"] = {{"prompt_tokens", r.prompt_tokens()},
                {"completion_tokens", r.completion_tokens()},
                {"total_tokens", r.total_tokens()}};
  j["latency_s"] = r.latency_s();
  j["attempts"] = r.attempts();
  j["worker"] = r.worker();
  j["endpoint"] = r.endpoint();
  j["requested_model"] = r.requested_model();
  j["served_model"] = r.served_model();
  j["system_fingerprint"] = r.system_fingerprint();
  j["request_id"] = r.request_id();
  j["started"] = IsoTime(r.started_unix_ms());
  j["finished"] = IsoTime(r.finished_unix_ms());
  j["last_error"] = r.last_error();
  j["flags"] = nlohmann::ordered_json::array();
  for (const auto& f : r.flags()) j["flags"].push_back(f);
  return j;
}

}  // namespace medeval
