// The published forms of a run: records.jsonl lines, output-folder naming,
// timestamps. Shared by the coordinator (which writes them) and the audit
// (which reads them).
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_RECORDS_H_
#define MEDEVAL_COMMON_RECORDS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/medeval.pb.h"

namespace medeval {

// The folder of a model's results: "Qwen/Qwen2.5-72B" -> "Qwen_Qwen2.5-72B".
std::string ModelFolderName(absl::string_view model);

// "2026-11-25T15:09:00.123Z".
std::string IsoTime(int64_t unix_ms);

// An answer cut off at max_tokens (finish_reason "length").
bool IsTruncated(const v1::AnswerRecord& record);

// One records.jsonl line (as a JSON object, keys in a fixed order).
// `images`: the question's img_path entries (VLM), named, never the bytes.
nlohmann::ordered_json RecordJson(absl::string_view dataset, uint32_t line,
                                  const nlohmann::ordered_json& other,
                                  const v1::AnswerRecord& record, bool failed,
                                  const std::vector<absl::string_view>& images = {});

}  // namespace medeval

#endif  // MEDEVAL_COMMON_RECORDS_H_
