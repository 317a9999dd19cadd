#include "sim/response_faults.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;

// Placed in the content, then swapped for raw bytes after the JSON is written.
constexpr absl::string_view kInvalidMarker = "@@MEDEVAL_SIM_INVALID_UTF8@@";
// A cut-off three-byte character and a byte that never starts one.
constexpr absl::string_view kInvalidBytes = "\xE4\xB8\xFF";

constexpr size_t Index(ContentFault f) { return static_cast<size_t>(f); }

}  // namespace

const char* ContentFaultName(ContentFault f) {
  switch (f) {
    case ContentFault::kEmpty:
      return "empty";
    case ContentFault::kWhitespace:
      return "whitespace";
    case ContentFault::kReasoningOnly:
      return "reasoning_only";
    case ContentFault::kThinkOnly:
      return "think_only";
    case ContentFault::kInvalidUtf8:
      return "invalid_utf8";
    case ContentFault::kHuge:
      return "huge";
    default:
      return "none";
  }
}

ResponseFaults::ResponseFaults(const ResponseFaultOptions& options) : options_(options) {
  for (size_t i = 0; i < rates_.size(); ++i) rates_[i].store(options.rates[i]);
  rates_[Index(ContentFault::kNone)].store(0);
  bad_gzip_rate_.store(options.bad_gzip_rate);
}

ContentFault ResponseFaults::Pick(double u) const {
  for (size_t i = Index(ContentFault::kNone) + 1; i < rates_.size(); ++i) {
    if ((u -= rates_[i].load(std::memory_order_relaxed)) < 0) return static_cast<ContentFault>(i);
  }
  return ContentFault::kNone;
}

bool ResponseFaults::Set(absl::string_view name, double value) {
  if (name == "bad_gzip_rate") {
    bad_gzip_rate_.store(value);
    return true;
  }
  for (size_t i = Index(ContentFault::kNone) + 1; i < rates_.size(); ++i) {
    if (name == absl::StrCat(ContentFaultName(static_cast<ContentFault>(i)), "_rate")) {
      rates_[i].store(value);
      return true;
    }
  }
  return false;
}

void ResponseFaults::Count(ContentFault f) {
  counts_[Index(f)].fetch_add(1, std::memory_order_relaxed);
}

json ResponseFaults::StatsJson() const {
  json j = json::object();
  for (size_t i = Index(ContentFault::kNone) + 1; i < counts_.size(); ++i) {
    j[ContentFaultName(static_cast<ContentFault>(i))] = counts_[i].load();
  }
  j["bad_gzip"] = bad_gzip_.load();
  return j;
}

void ResponseFaults::Reset() {
  for (auto& c : counts_) c.store(0);
  bad_gzip_.store(0);
}

void ApplyContentFault(ContentFault fault, const std::string& reasoning, int64_t huge_bytes,
                       json* body) {
  json& message = (*body)["choices"][0]["message"];
  const std::string answer = message.value("content", "");
  // What a reasoning model thought, ending in its answer: the text a reader
  // would take for the answer is there, just not where the platform looks.
  const std::string thinking =
      reasoning.empty() ? absl::StrCat("先分析题目。答案是 ", answer) : reasoning;
  switch (fault) {
    case ContentFault::kEmpty:
      message["content"] = "";
      break;
    case ContentFault::kWhitespace:
      message["content"] = " \n\t\u00a0\u3000\u3000\n";
      break;
    case ContentFault::kReasoningOnly:
      message["content"] = nullptr;
      message["reasoning_content"] = thinking;
      break;
    case ContentFault::kThinkOnly:
      message["content"] = absl::StrCat("<think>\n", thinking, "\n</think>\n\n");
      message.erase("reasoning_content");
      break;
    case ContentFault::kInvalidUtf8:
      message["content"] = absl::StrCat(kInvalidMarker, answer);
      break;
    case ContentFault::kHuge:
      (*body)["sim_padding"] =
          std::string(static_cast<size_t>(std::max<int64_t>(0, huge_bytes)), 'x');
      break;
    default:
      break;
  }
}

std::string FinishBody(ContentFault fault, std::string dumped) {
  if (fault != ContentFault::kInvalidUtf8) return dumped;
  return absl::StrReplaceAll(dumped, {{kInvalidMarker, kInvalidBytes}});
}

absl::StatusOr<std::string> Gzip(absl::string_view data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("deflateInit2 failed");
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t written = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return absl::InternalError(absl::StrCat("deflate failed: ", rc));
  out.resize(written);
  return out;
}

}  // namespace medeval::sim
