#include "sim/batch_api.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/multipart.h"
#include "common/stable_hash.h"
#include "sim/chat_request.h"
#include "sim/completion.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;

constexpr char kEndpoint[] = "/v1/chat/completions";

BatchHttpResponse Error(int status, absl::string_view message, absl::string_view type,
                        absl::string_view code = "", absl::string_view param = "") {
  json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return {status, "application/json", json{{"error", e}}.dump()};
}

BatchHttpResponse Ok(const json& j) { return {200, "application/json", j.dump()}; }

json TimeOrNull(absl::Time t) {
  return t == absl::InfinitePast() ? json(nullptr) : json(absl::ToUnixSeconds(t));
}

// A query parameter's value, or "".
std::string QueryParam(absl::string_view query, absl::string_view key) {
  for (absl::string_view kv : absl::StrSplit(query, '&')) {
    size_t eq = kv.find('=');
    if (eq != absl::string_view::npos && kv.substr(0, eq) == key) {
      return std::string(kv.substr(eq + 1));
    }
  }
  return "";
}

struct StoredFile {
  std::string id;
  std::string filename;
  std::string purpose;
  std::string data;
  absl::Time created;
};

struct Line {
  std::string custom_id;
  ChatRequest request;
  std::string request_error;  // the body is not a chat request a server accepts
};

struct Batch {
  std::string id;
  std::string input_file_id;
  std::string window;
  json metadata = nullptr;
  std::string status = "validating";
  json errors = nullptr;  // validation errors
  absl::Time created, in_progress_at = absl::InfinitePast(), finalizing_at = absl::InfinitePast(),
                      completed_at = absl::InfinitePast(), failed_at = absl::InfinitePast(),
                      expired_at = absl::InfinitePast(), cancelling_at = absl::InfinitePast(),
                      cancelled_at = absl::InfinitePast(), expires_at;
  std::vector<Line> lines;
  size_t processed = 0;
  int64_t completed = 0, failed = 0;
  int64_t tokens_estimate = 0;  // prompt tokens, for the enqueued limit
  std::vector<std::pair<std::string, std::string>> out, err;  // (custom_id, line)
  std::string output_file_id, error_file_id;
};

bool Unfinished(const Batch& b) {
  return b.status == "validating" || b.status == "in_progress" || b.status == "finalizing" ||
         b.status == "cancelling";
}

}  // namespace

struct BatchApi::Impl {
  Impl(BatchOptions o, AnswerStyle s, Hooks h) : opt(o), style(s), hooks(std::move(h)) {}

  BatchHttpResponse UploadFile(absl::string_view content_type, const std::string& body);
  BatchHttpResponse CreateBatch(const std::string& body);
  json FileJson(const StoredFile& f) const;
  json BatchJson(const Batch& b) const;
  void Validate(Batch* b, const StoredFile& f);
  void Advance(Batch* b, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void ProcessUpTo(Batch* b, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void WriteResults(Batch* b, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::string NewId(absl::string_view prefix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  int64_t EnqueuedTokens(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  const BatchOptions opt;
  const AnswerStyle style;
  const Hooks hooks;
  absl::Mutex mu;
  uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
  std::map<std::string, StoredFile> files ABSL_GUARDED_BY(mu);
  std::map<std::string, Batch> batches ABSL_GUARDED_BY(mu);
  std::vector<std::string> batch_order ABSL_GUARDED_BY(mu);  // creation order
  uint64_t lines_ok ABSL_GUARDED_BY(mu) = 0;
  uint64_t lines_failed ABSL_GUARDED_BY(mu) = 0;
  uint64_t lines_expired ABSL_GUARDED_BY(mu) = 0;
  uint64_t prompt_tokens ABSL_GUARDED_BY(mu) = 0;
  uint64_t completion_tokens ABSL_GUARDED_BY(mu) = 0;
};

std::string BatchApi::Impl::NewId(absl::string_view prefix) {
  const uint64_t n = next_id++;
  return absl::StrFormat(
      "%s%06d%08x", prefix, n,
      static_cast<uint32_t>(StableHashOf({prefix, absl::StrCat(n)}, style.seed)));
}

json BatchApi::Impl::FileJson(const StoredFile& f) const {
  return {{"id", f.id},
          {"object", "file"},
          {"bytes", f.data.size()},
          {"created_at", absl::ToUnixSeconds(f.created)},
          {"filename", f.filename},
          {"purpose", f.purpose},
          {"status", "processed"},
          {"status_details", nullptr}};
}

json BatchApi::Impl::BatchJson(const Batch& b) const {
  json j = {{"id", b.id},
            {"object", "batch"},
            {"endpoint", kEndpoint},
            {"errors", b.errors},
            {"input_file_id", b.input_file_id},
            {"completion_window", b.window},
            {"status", b.status}};
  j["output_file_id"] = b.output_file_id.empty() ? json(nullptr) : json(b.output_file_id);
  j["error_file_id"] = b.error_file_id.empty() ? json(nullptr) : json(b.error_file_id);
  j["created_at"] = absl::ToUnixSeconds(b.created);
  j["in_progress_at"] = TimeOrNull(b.in_progress_at);
  j["expires_at"] = absl::ToUnixSeconds(b.expires_at);
  j["finalizing_at"] = TimeOrNull(b.finalizing_at);
  j["completed_at"] = TimeOrNull(b.completed_at);
  j["failed_at"] = TimeOrNull(b.failed_at);
  j["expired_at"] = TimeOrNull(b.expired_at);
  j["cancelling_at"] = TimeOrNull(b.cancelling_at);
  j["cancelled_at"] = TimeOrNull(b.cancelled_at);
  j["request_counts"] = {
      {"total", b.lines.size()}, {"completed", b.completed}, {"failed", b.failed}};
  j["metadata"] = b.metadata;
  return j;
}

BatchHttpResponse BatchApi::Impl::UploadFile(absl::string_view content_type,
                                             const std::string& body) {
  auto parts = ParseMultipart(content_type, body);
  if (!parts.ok()) return Error(400, parts.status().message(), "invalid_request_error");
  std::string purpose;
  const FormPart* file = nullptr;
  for (const FormPart& p : *parts) {
    if (p.name == "purpose") purpose = p.data;
    if (p.name == "file") file = &p;
  }
  if (file == nullptr) {
    return Error(400, "missing required field 'file'", "invalid_request_error",
                 "missing_required_parameter", "file");
  }
  if (purpose.empty()) {
    return Error(400, "missing required field 'purpose'", "invalid_request_error",
                 "missing_required_parameter", "purpose");
  }
  absl::MutexLock lock(&mu);
  StoredFile f;
  f.id = NewId("file-");
  f.filename = file->filename.empty() ? "upload" : file->filename;
  f.purpose = purpose;
  f.data = file->data;
  f.created = absl::Now();
  json j = FileJson(f);
  files[f.id] = std::move(f);
  return Ok(j);
}

void BatchApi::Impl::Validate(Batch* b, const StoredFile& f) {
  json errors = json::array();
  auto add = [&](int64_t line, absl::string_view code, std::string message,
                 absl::string_view param = "") {
    if (errors.size() >= 1000) return;
    json e = {{"code", code}, {"message", std::move(message)}};
    e["param"] = param.empty() ? json(nullptr) : json(param);
    e["line"] = line > 0 ? json(line) : json(nullptr);
    errors.push_back(std::move(e));
  };
  if (static_cast<int64_t>(f.data.size()) > opt.max_file_bytes) {
    add(0, "file_too_large",
        absl::StrCat("the input file has ", f.data.size(), " bytes; the limit is ",
                     opt.max_file_bytes));
  }
  std::vector<absl::string_view> raw = absl::StrSplit(f.data, '\n');
  if (!raw.empty() && raw.back().empty()) raw.pop_back();
  if (static_cast<int64_t>(raw.size()) > opt.max_lines) {
    add(0, "too_many_requests",
        absl::StrCat("the input file has ", raw.size(), " requests; the limit is ", opt.max_lines));
  }
  absl::flat_hash_set<std::string> seen;
  std::string model;
  for (size_t i = 0; i < raw.size() && errors.size() < 1000; ++i) {
    const int64_t lineno = static_cast<int64_t>(i) + 1;
    absl::string_view text = raw[i];
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (!j.is_object()) {
      add(lineno, "invalid_json_line", absl::StrCat("line ", lineno, " is not a JSON object"));
      continue;
    }
    auto id = j.find("custom_id");
    if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
      add(lineno, "missing_required_parameter",
          absl::StrCat("line ", lineno, " has no custom_id string"), "custom_id");
      continue;
    }
    Line line;
    line.custom_id = id->get<std::string>();
    if (!seen.insert(line.custom_id).second) {
      add(lineno, "duplicate_custom_id",
          absl::StrCat("line ", lineno, ": custom_id '", line.custom_id, "' is used twice"),
          "custom_id");
      continue;
    }
    auto method = j.find("method");
    if (method == j.end() || *method != "POST") {
      add(lineno, "invalid_method", absl::StrCat("line ", lineno, ": method must be POST"),
          "method");
      continue;
    }
    auto url = j.find("url");
    if (url == j.end() || *url != kEndpoint) {
      add(lineno, "invalid_url",
          absl::StrCat("line ", lineno, ": url must be the batch's endpoint ", kEndpoint), "url");
      continue;
    }
    auto body = j.find("body");
    if (body == j.end() || !body->is_object()) {
      add(lineno, "missing_required_parameter",
          absl::StrCat("line ", lineno, " has no body object"), "body");
      continue;
    }
    const std::string m = body->value("model", std::string());
    if (i == 0 || model.empty()) model = m;
    if (m != model) {
      add(lineno, "mismatched_model",
          absl::StrCat("line ", lineno, ": model '", m, "' differs from '", model,
                       "' (one model per batch)"),
          "body.model");
      continue;
    }
    auto parsed = ParseChatRequest(body->dump());
    if (parsed.ok()) {
      line.request = std::move(*parsed);
      b->tokens_estimate += static_cast<int64_t>(line.request.prompt_chars);
    } else {
      line.request_error = std::string(parsed.status().message());
    }
    b->lines.push_back(std::move(line));
  }
  if (raw.empty()) add(0, "empty_file", "the input file has no requests");
  if (!errors.empty()) b->errors = {{"object", "list"}, {"data", std::move(errors)}};
}

int64_t BatchApi::Impl::EnqueuedTokens(absl::Time now) {
  int64_t sum = 0;
  for (auto& [id, b] : batches) {
    Advance(&b, now);
    if (Unfinished(b) && b.status != "cancelling") sum += b.tokens_estimate;
  }
  return sum;
}

BatchHttpResponse BatchApi::Impl::CreateBatch(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return Error(400, "the body must be a JSON object", "invalid_request_error");
  const std::string input = j.value("input_file_id", std::string());
  const std::string endpoint = j.value("endpoint", std::string());
  const std::string window = j.value("completion_window", std::string());
  if (input.empty()) {
    return Error(400, "missing required parameter 'input_file_id'", "invalid_request_error",
                 "missing_required_parameter", "input_file_id");
  }
  if (endpoint != kEndpoint) {
    return Error(400, absl::StrCat("endpoint must be ", kEndpoint), "invalid_request_error",
                 "invalid_value", "endpoint");
  }
  if (window != "24h") {
    return Error(400, "completion_window must be '24h'", "invalid_request_error", "invalid_value",
                 "completion_window");
  }
  absl::MutexLock lock(&mu);
  auto f = files.find(input);
  if (f == files.end()) {
    return Error(404, absl::StrCat("no file with id '", input, "'"), "invalid_request_error",
                 "not_found", "input_file_id");
  }
  if (f->second.purpose != "batch") {
    return Error(400,
                 absl::StrCat("file '", input, "' has purpose '", f->second.purpose,
                              "'; a batch's input needs purpose 'batch'"),
                 "invalid_request_error", "invalid_value", "input_file_id");
  }
  const absl::Time now = absl::Now();
  Batch b;
  b.id = NewId("batch_");
  b.input_file_id = input;
  b.window = window;
  if (j.contains("metadata")) b.metadata = j["metadata"];
  b.created = now;
  b.expires_at = now + absl::Seconds(opt.expire_s);
  Validate(&b, f->second);
  if (b.errors.is_null() && opt.max_enqueued_tokens > 0) {
    const int64_t enqueued = EnqueuedTokens(now);
    if (enqueued + b.tokens_estimate > opt.max_enqueued_tokens) {
      b.errors = {
          {"object", "list"},
          {"data",
           json::array(
               {{{"code", "token_limit_exceeded"},
                 {"message", absl::StrCat("Enqueued token limit reached: ", enqueued,
                                          " tokens enqueued, this batch has ", b.tokens_estimate,
                                          ", the limit is ", opt.max_enqueued_tokens)},
                 {"param", nullptr},
                 {"line", nullptr}}})}};
    }
  }
  json out = BatchJson(b);
  batch_order.push_back(b.id);
  batches[b.id] = std::move(b);
  return Ok(out);
}

void BatchApi::Impl::ProcessUpTo(Batch* b, size_t n) {
  for (; b->processed < n && b->processed < b->lines.size(); ++b->processed) {
    const Line& line = b->lines[b->processed];
    const std::string req_id = absl::StrCat("req_", b->id, "_", b->processed);
    json out = {{"id", absl::StrCat("batch_req_", b->id.substr(6), "_", b->processed)},
                {"custom_id", line.custom_id}};
    if (!line.request_error.empty()) {
      out["response"] = {
          {"status_code", 400},
          {"request_id", req_id},
          {"body", json::parse(Error(400, line.request_error, "invalid_request_error").body)}};
      out["error"] = nullptr;
      ++b->failed;
      ++lines_failed;
      b->err.emplace_back(line.custom_id, out.dump());
      continue;
    }
    if (hooks.on_request) hooks.on_request(line.request.question, line.request.images_ok);
    const double u =
        HashToUnit(StableHashOf({"batch-line-fault", b->id, line.custom_id}, style.seed));
    if (u < opt.line_fail_rate) {
      out["response"] = {
          {"status_code", 500},
          {"request_id", req_id},
          {"body", json::parse(Error(500, "simulated server error", "server_error").body)}};
      out["error"] = nullptr;
      ++b->failed;
      ++lines_failed;
      b->err.emplace_back(line.custom_id, out.dump());
      continue;
    }
    SimCompletion c = Complete(line.request, style);
    prompt_tokens += static_cast<uint64_t>(c.prompt_tokens);
    completion_tokens += static_cast<uint64_t>(c.completion_tokens);
    out["response"] = {
        {"status_code", 200},
        {"request_id", req_id},
        {"body", CompletionBody(c, absl::StrCat("chatcmpl-", req_id), line.request.model,
                                absl::ToUnixSeconds(absl::Now()))}};
    out["error"] = nullptr;
    ++b->completed;
    ++lines_ok;
    if (hooks.on_answered) hooks.on_answered(line.request.question);
    b->out.emplace_back(line.custom_id, out.dump());
  }
}

void BatchApi::Impl::WriteResults(Batch* b, absl::Time now) {
  // Output order is not input order (clients must match by custom_id).
  auto shuffled = [&](std::vector<std::pair<std::string, std::string>> v) {
    std::sort(v.begin(), v.end(), [&](const auto& x, const auto& y) {
      return StableHashOf({x.first}, style.seed) < StableHashOf({y.first}, style.seed);
    });
    std::string data;
    for (const auto& [id, line] : v) absl::StrAppend(&data, line, "\n");
    return data;
  };
  auto store = [&](std::string data, absl::string_view suffix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    StoredFile f;
    f.id = NewId("file-");
    f.filename = absl::StrCat(b->id, suffix);
    f.purpose = "batch_output";
    f.data = std::move(data);
    f.created = now;
    std::string id = f.id;
    files[id] = std::move(f);
    return id;
  };
  if (!b->out.empty()) b->output_file_id = store(shuffled(b->out), "_output.jsonl");
  if (!b->err.empty()) b->error_file_id = store(shuffled(b->err), "_error.jsonl");
}

void BatchApi::Impl::Advance(Batch* b, absl::Time now) {
  if (b->status == "validating") {
    const absl::Time ready = b->created + absl::Milliseconds(opt.validate_ms);
    if (now < ready) return;
    if (!b->errors.is_null()) {
      b->status = "failed";
      b->failed_at = ready;
      return;
    }
    b->status = "in_progress";
    b->in_progress_at = ready;
  }
  if (b->status == "in_progress") {
    const absl::Time until = std::min(now, b->expires_at);
    const size_t total = b->lines.size();
    size_t target = total;
    absl::Time done_at = b->in_progress_at;
    if (opt.lines_per_s > 0) {
      const double s = absl::ToDoubleSeconds(until - b->in_progress_at);
      target = std::min(total, static_cast<size_t>(std::max(0.0, std::floor(s * opt.lines_per_s))));
      done_at = b->in_progress_at + absl::Seconds(static_cast<double>(total) / opt.lines_per_s);
    }
    ProcessUpTo(b, target);
    if (b->processed == total) {
      b->status = "finalizing";
      b->finalizing_at = std::min(done_at, now);
    } else if (now >= b->expires_at) {
      b->status = "expired";
      b->expired_at = b->expires_at;
      for (size_t i = b->processed; i < total; ++i) {
        json out = {{"id", absl::StrCat("batch_req_", b->id.substr(6), "_", i)},
                    {"custom_id", b->lines[i].custom_id},
                    {"response", nullptr},
                    {"error",
                     {{"code", "batch_expired"},
                      {"message",
                       "This request could not be executed before the completion window "
                       "expired."}}}};
        b->err.emplace_back(b->lines[i].custom_id, out.dump());
        ++b->failed;
        ++lines_expired;
      }
      b->processed = total;
      WriteResults(b, b->expires_at);
      return;
    }
  }
  if (b->status == "finalizing") {
    const absl::Time done = b->finalizing_at + absl::Milliseconds(opt.finalize_ms);
    if (now < done) return;
    b->status = "completed";
    b->completed_at = done;
    WriteResults(b, done);
  }
  if (b->status == "cancelling") {
    const absl::Time done = b->cancelling_at + absl::Milliseconds(opt.finalize_ms);
    if (now < done) return;
    b->status = "cancelled";
    b->cancelled_at = done;
    WriteResults(b, done);
  }
}

BatchApi::BatchApi(BatchOptions options, AnswerStyle style, Hooks hooks)
    : impl_(std::make_unique<Impl>(options, style, std::move(hooks))) {}

BatchApi::~BatchApi() = default;

std::optional<BatchHttpResponse> BatchApi::Handle(absl::string_view method, absl::string_view path,
                                                  absl::string_view query,
                                                  absl::string_view content_type,
                                                  const std::string& body) {
  Impl& s = *impl_;
  std::vector<absl::string_view> seg = absl::StrSplit(path, '/', absl::SkipEmpty());
  // seg[0] == "v1"
  if (seg.size() < 2 || seg[0] != "v1" || (seg[1] != "files" && seg[1] != "batches")) {
    return std::nullopt;
  }
  const bool get = method == "GET", post = method == "POST", del = method == "DELETE";
  const absl::Time now = absl::Now();
  if (seg[1] == "files") {
    if (seg.size() == 2 && post) return s.UploadFile(content_type, body);
    absl::MutexLock lock(&s.mu);
    if (seg.size() == 2 && get) {
      json data = json::array();
      for (const auto& [id, f] : s.files) data.push_back(s.FileJson(f));
      return Ok({{"object", "list"}, {"data", data}});
    }
    if (seg.size() < 3 || seg.size() > 4)
      return Error(404, "no such route", "invalid_request_error");
    auto f = s.files.find(std::string(seg[2]));
    if (f == s.files.end()) {
      return Error(404, absl::StrCat("no file with id '", seg[2], "'"), "invalid_request_error",
                   "not_found");
    }
    if (seg.size() == 3 && get) return Ok(s.FileJson(f->second));
    if (seg.size() == 3 && del) {
      json j = {{"id", f->first}, {"object", "file"}, {"deleted", true}};
      s.files.erase(f);
      return Ok(j);
    }
    if (seg.size() == 4 && seg[3] == "content" && get) {
      return BatchHttpResponse{200, "application/octet-stream", f->second.data};
    }
    return Error(405, "method not allowed", "invalid_request_error");
  }
  // /v1/batches
  if (seg.size() == 2 && post) return s.CreateBatch(body);
  absl::MutexLock lock(&s.mu);
  if (seg.size() == 2 && get) {
    int limit = 20;
    std::string l = QueryParam(query, "limit");
    if (!l.empty() && (!absl::SimpleAtoi(l, &limit) || limit < 1 || limit > 100)) {
      return Error(400, "limit must be between 1 and 100", "invalid_request_error", "invalid_value",
                   "limit");
    }
    const std::string after = QueryParam(query, "after");
    json data = json::array();
    bool started = after.empty(), more = false;
    for (auto it = s.batch_order.rbegin(); it != s.batch_order.rend(); ++it) {  // newest first
      if (!started) {
        started = *it == after;
        continue;
      }
      if (static_cast<int>(data.size()) == limit) {
        more = true;
        break;
      }
      Batch& b = s.batches[*it];
      s.Advance(&b, now);
      data.push_back(s.BatchJson(b));
    }
    json j = {{"object", "list"}, {"data", data}, {"has_more", more}};
    j["first_id"] = data.empty() ? json(nullptr) : data.front()["id"];
    j["last_id"] = data.empty() ? json(nullptr) : data.back()["id"];
    return Ok(j);
  }
  if (seg.size() < 3) return Error(405, "method not allowed", "invalid_request_error");
  auto b = s.batches.find(std::string(seg[2]));
  if (b == s.batches.end()) {
    return Error(404, absl::StrCat("no batch with id '", seg[2], "'"), "invalid_request_error",
                 "not_found");
  }
  s.Advance(&b->second, now);
  if (seg.size() == 3 && get) return Ok(s.BatchJson(b->second));
  if (seg.size() == 4 && seg[3] == "cancel" && post) {
    Batch& bt = b->second;
    if (bt.status != "validating" && bt.status != "in_progress") {
      return Error(409, absl::StrCat("cannot cancel a batch that is ", bt.status),
                   "invalid_request_error", "invalid_state");
    }
    bt.status = "cancelling";
    bt.cancelling_at = now;
    return Ok(s.BatchJson(bt));
  }
  return Error(405, "method not allowed", "invalid_request_error");
}

json BatchApi::Stats() {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  const absl::Time now = absl::Now();
  json by_status = json::object();
  for (auto& [id, b] : s.batches) {
    s.Advance(&b, now);
    by_status[b.status] = by_status.value(b.status, 0) + 1;
  }
  return {{"files", s.files.size()},
          {"created", s.batches.size()},
          {"by_status", by_status},
          {"lines",
           {{"succeeded", s.lines_ok}, {"failed", s.lines_failed}, {"expired", s.lines_expired}}},
          {"tokens", {{"prompt", s.prompt_tokens}, {"completion", s.completion_tokens}}}};
}

}  // namespace medeval::sim
