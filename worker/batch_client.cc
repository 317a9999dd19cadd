#include "worker/batch_client.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "common/http_headers.h"
#include "common/multipart.h"
#include "worker/chat_backend.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string StrOr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

absl::StatusOr<BatchInfo> ParseBatch(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("id")) {
    return absl::UnavailableError(absl::StrCat("not a batch object: ", ServerErrorMessage(body)));
  }
  BatchInfo b;
  b.id = StrOr(j, "id");
  b.status = StrOr(j, "status");
  b.input_file_id = StrOr(j, "input_file_id");
  b.output_file_id = StrOr(j, "output_file_id");
  b.error_file_id = StrOr(j, "error_file_id");
  if (j.contains("request_counts") && j["request_counts"].is_object()) {
    const json& c = j["request_counts"];
    b.total = c.value("total", int64_t{0});
    b.completed = c.value("completed", int64_t{0});
    b.failed = c.value("failed", int64_t{0});
  }
  if (j.contains("created_at") && j["created_at"].is_number()) b.created_at = j["created_at"];
  if (j.contains("expires_at") && j["expires_at"].is_number()) b.expires_at = j["expires_at"];
  if (j.contains("errors") && j["errors"].is_object() && j["errors"].contains("data")) {
    for (const json& e : j["errors"]["data"]) {
      if (!b.errors.empty()) b.errors += "; ";
      if (e.contains("line") && e["line"].is_number()) {
        absl::StrAppend(&b.errors, "line ", e["line"].get<int64_t>(), ": ");
      }
      absl::StrAppend(&b.errors, StrOr(e, "message"));
    }
  }
  return b;
}

}  // namespace

bool BatchInfo::terminal() const {
  return status == "completed" || status == "failed" || status == "expired" ||
         status == "cancelled";
}

std::string ApiBase(const Endpoint& endpoint) { return endpoint.base; }

BatchClient::BatchClient(HttpClient* http, std::string base, std::string api_key, Headers headers,
                         absl::Duration timeout)
    : http_(http),
      base_(std::move(base)),
      api_key_(std::move(api_key)),
      headers_(std::move(headers)),
      timeout_(timeout) {}

absl::StatusOr<std::string> BatchClient::Call(const std::string& method, const std::string& path,
                                              std::string body, const std::string& content_type) {
  HttpRequest req;
  req.method = method;
  req.url = base_ + path;
  req.body = std::move(body);
  req.timeout = timeout_;
  if (!content_type.empty()) req.headers.push_back("Content-Type: " + content_type);
  if (!api_key_.empty()) req.headers.push_back("Authorization: Bearer " + api_key_);
  for (const auto& [name, value] : headers_) req.headers.push_back(absl::StrCat(name, ": ", value));
  auto p = std::make_shared<std::promise<HttpResponse>>();
  auto f = p->get_future();
  http_->Send(std::move(req), [p](HttpResponse r) { p->set_value(std::move(r)); });
  HttpResponse r = f.get();
  const std::string what = absl::StrCat(method, " ", path);
  if (!r.error.empty()) {
    return absl::UnavailableError(
        ScrubCredentials(absl::StrCat(what, ": ", r.error), api_key_, headers_));
  }
  if (r.status >= 200 && r.status < 300) return std::move(r.body);
  std::string msg =
      ScrubCredentials(absl::StrCat(what, ": HTTP ", r.status, ": ", ServerErrorMessage(r.body)),
                       api_key_, headers_);
  if (r.status == 401 || r.status == 403) return absl::FailedPreconditionError(msg);
  if (r.status == 404) return absl::NotFoundError(msg);
  if (r.status == 429 || r.status == 408 || r.status >= 500) return absl::UnavailableError(msg);
  return absl::InvalidArgumentError(msg);
}

absl::StatusOr<std::string> BatchClient::UploadFile(const std::string& filename,
                                                    const std::string& jsonl) {
  std::string ct;
  std::string body = BuildMultipart(
      {{"purpose", "", "", "batch"}, {"file", filename, "application/jsonl", jsonl}}, &ct);
  auto r = Call("POST", "/files", std::move(body), ct);
  if (!r.ok()) return r.status();
  json j = json::parse(*r, nullptr, false);
  if (!j.is_object() || StrOr(j, "id").empty()) {
    return absl::UnavailableError("POST /files: the answer has no file id");
  }
  return StrOr(j, "id");
}

absl::StatusOr<BatchInfo> BatchClient::Create(const std::string& input_file_id,
                                              const json& metadata) {
  json req = {{"input_file_id", input_file_id},
              {"endpoint", "/v1/chat/completions"},
              {"completion_window", "24h"}};
  if (!metadata.is_null()) req["metadata"] = metadata;
  auto r = Call("POST", "/batches", req.dump(), "application/json");
  if (!r.ok()) return r.status();
  return ParseBatch(*r);
}

absl::StatusOr<BatchInfo> BatchClient::Get(const std::string& batch_id) {
  auto r = Call("GET", "/batches/" + batch_id, "", "");
  if (!r.ok()) return r.status();
  return ParseBatch(*r);
}

absl::StatusOr<BatchInfo> BatchClient::FindByInputFile(const std::string& input_file_id,
                                                       int max_pages) {
  std::string after;
  for (int page = 0; page < max_pages; ++page) {
    auto r = Call("GET", "/batches?limit=100" + (after.empty() ? "" : "&after=" + after), "", "");
    if (!r.ok()) return r.status();
    json j = json::parse(*r, nullptr, false);
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
      return absl::UnavailableError("GET /batches: not a list");
    }
    for (const json& b : j["data"]) {
      if (StrOr(b, "input_file_id") == input_file_id) return ParseBatch(b.dump());
    }
    if (!j.value("has_more", false) || j["data"].empty()) break;
    after = StrOr(j["data"].back(), "id");
  }
  return absl::NotFoundError(absl::StrCat("no batch over file ", input_file_id));
}

absl::StatusOr<BatchInfo> BatchClient::Cancel(const std::string& batch_id) {
  auto r = Call("POST", "/batches/" + batch_id + "/cancel", "", "");
  if (!r.ok()) return r.status();
  return ParseBatch(*r);
}

absl::StatusOr<std::string> BatchClient::Content(const std::string& file_id) {
  return Call("GET", "/files/" + file_id + "/content", "", "");
}

absl::Status BatchClient::DeleteFile(const std::string& file_id) {
  return Call("DELETE", "/files/" + file_id, "", "").status();
}

}  // namespace medeval
