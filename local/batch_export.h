// `medeval batch export`: a suite's questions as one OpenAI batch input file
// for offline engines (`vllm run-batch`) or a provider's Batch API. Each
// line's body is exactly the request the online path sends for that
// question (BuildChatRequest); its custom_id names the question
// ("<Dataset>:<line>"), which `medeval batch import` reads back.
//
// Thread-safety: free functions without shared state.
#ifndef MEDEVAL_LOCAL_BATCH_EXPORT_H_
#define MEDEVAL_LOCAL_BATCH_EXPORT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/suite.h"
#include "proto/medeval.pb.h"

namespace medeval {

// "MedExam:12".
std::string QuestionCustomId(absl::string_view dataset, uint32_t line);

struct ExportCounts {
  uint64_t lines = 0;
  uint64_t bytes = 0;
};

// Writes one input line per question of `suite` to `out`. VLM images are read
// from the suite folder (PDF reports rendered into `pdf_cache_dir`).
absl::Status WriteBatchInput(const Suite& suite, const std::string& model,
                             const v1::RequestParams& params, const v1::PdfOptions& pdf,
                             const std::string& pdf_cache_dir, std::ostream& out,
                             ExportCounts* counts);

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_BATCH_EXPORT_H_
