#include "worker/batch_runner.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cost.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/records.h"
#include "common/utf8.h"

namespace medeval {
namespace {

using json = nlohmann::json;

constexpr absl::Duration kKeepFinished = absl::Hours(24 * 7);

std::string CustomId(const v1::QuestionKey& key) {
  return absl::StrCat(key.run_id(), "#", key.index());
}

}  // namespace

BatchRunner::BatchRunner(HttpClient* http, ChatBackend* online, const BackendConfig& config,
                         BatchSettings settings, const std::string& model, OnChange on_change)
    : http_(http),
      online_(online),
      config_(config),
      settings_(std::move(settings)),
      state_path_(settings_.state_dir.empty()
                      ? ""
                      : JoinPath(settings_.state_dir,
                                 absl::StrCat("batches-", ModelFolderName(model), ".json"))),
      on_change_(std::move(on_change)),
      endpoint_(config.endpoint),
      cancel_on_exit_(settings_.cancel_on_exit) {
  LoadState();  // before any Ask: a question of a known batch must wait for it
  thread_ = std::thread([this] { Loop(); });
}

BatchRunner::~BatchRunner() { Stop(); }

void BatchRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t BatchRunner::Ask(const v1::RunInfo& run, const v1::Lease& lease, ChatBackend::Done done) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  AskEntry& a = asks_[id];
  a.custom_id = CustomId(lease.key());
  a.run = run;
  a.lease = lease;
  a.done = std::move(done);
  by_custom_id_[a.custom_id] = id;
  if (early_.contains(a.custom_id)) {
    ready_.push_back(id);  // its batch ended already (before a restart, say)
  } else if (in_batch_.contains(a.custom_id)) {
    // A batch already has it: wait for that one instead of paying again.
  } else {
    pending_.push_back(id);
    first_pending_ = std::min(first_pending_, absl::Now());
  }
  cv_.SignalAll();
  return id;
}

void BatchRunner::Cancel(uint64_t ask_id) {
  absl::MutexLock lock(&mu_);
  auto it = asks_.find(ask_id);
  if (it == asks_.end()) return;
  if (it->second.online_id != 0) online_->Cancel(it->second.online_id);
  auto p = std::find(pending_.begin(), pending_.end(), ask_id);
  if (p != pending_.end()) pending_.erase(p);
  auto c = by_custom_id_.find(it->second.custom_id);
  if (c != by_custom_id_.end() && c->second == ask_id) by_custom_id_.erase(c);
  asks_.erase(it);
}

void BatchRunner::SetEndpoint(const Endpoint& endpoint) {
  absl::MutexLock lock(&mu_);
  endpoint_ = endpoint;
}

void BatchRunner::SetCancelOnExit(bool cancel) {
  absl::MutexLock lock(&mu_);
  cancel_on_exit_ = cancel;
}

BatchClient BatchRunner::ClientFor(const std::string& key,
                                   const std::vector<std::pair<std::string, std::string>>& extra) {
  BatchClient::Headers headers = config_.headers;
  absl::MutexLock lock(&mu_);
  auto it = submitted_.find(key);
  const auto& run_headers = it != submitted_.end() ? it->second.headers : extra;
  // The run's headers first, as online requests send them.
  headers.insert(headers.begin(), run_headers.begin(), run_headers.end());
  return BatchClient(http_, ApiBase(endpoint_), config_.api_key, std::move(headers));
}

void BatchRunner::Changed() {
  if (on_change_) on_change_(batches());
}

std::vector<v1::BatchState> BatchRunner::batches() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::BatchState> out;
  for (const auto& [key, s] : submitted_) {
    v1::BatchState& b = out.emplace_back();
    b.set_batch_id(s.batch_id);
    b.set_run_id(s.run_id);
    b.set_status(s.info.status);
    b.set_total(static_cast<uint64_t>(
        s.info.total > 0 ? s.info.total : static_cast<int64_t>(s.custom_ids.size())));
    b.set_completed(static_cast<uint64_t>(s.info.completed));
    b.set_failed(static_cast<uint64_t>(s.info.failed));
    // The provider's clock when it says; ours otherwise.
    const absl::Time created =
        s.info.created_at > 0 ? absl::FromUnixSeconds(s.info.created_at) : s.created;
    b.set_created_unix_ms(absl::ToUnixMillis(created));
    b.set_expires_unix_ms(s.info.expires_at > 0 ? s.info.expires_at * 1000
                                                : absl::ToUnixMillis(created + absl::Hours(24)));
  }
  return out;
}

void BatchRunner::LoadState() {
  if (state_path_.empty() || !PathExists(state_path_)) return;
  auto text = ReadFile(state_path_);
  json j = text.ok() ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object() || !j.contains("batches") || !j["batches"].is_array()) {
    MEDEVAL_LOG(ERROR) << state_path_ << ": unreadable batch state; its batches are not followed";
    return;
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (const json& b : j["batches"]) {
    Submitted s;
    s.run_id = b.value("run_id", "");
    if (b.contains("headers") && b["headers"].is_object()) {
      for (const auto& [name, value] : b["headers"].items()) {
        if (value.is_string()) s.headers.emplace_back(name, value.get<std::string>());
      }
    }
    s.input_file_id = b.value("input_file_id", "");
    s.batch_id = b.value("batch_id", "");
    s.tokens = b.value("tokens", int64_t{0});
    s.created = absl::FromUnixMillis(b.value("created_unix_ms", int64_t{0}));
    if (s.input_file_id.empty() || now - s.created > kKeepFinished) continue;
    for (const json& c : b.value("custom_ids", json::array())) {
      if (c.is_string()) s.custom_ids.push_back(c.get<std::string>());
    }
    // Finished ones too: their results are read again for questions leased anew.
    s.next_poll = now;
    s.backoff = settings_.poll_min;
    for (const std::string& c : s.custom_ids) in_batch_[c] = s.input_file_id;
    MEDEVAL_LOG(INFO) << "re-attaching to batch "
                      << (s.batch_id.empty() ? "(being created) over " + s.input_file_id
                                             : s.batch_id)
                      << " (" << s.custom_ids.size() << " requests)";
    submitted_[s.input_file_id] = std::move(s);
  }
}

absl::Status BatchRunner::SaveStateLocked() {
  if (state_path_.empty()) return absl::OkStatus();
  json list = json::array();
  for (const auto& [key, s] : submitted_) {
    json headers = json::object();
    for (const auto& [name, value] : s.headers) headers[name] = value;
    list.push_back({{"run_id", s.run_id},
                    {"headers", headers},
                    {"input_file_id", s.input_file_id},
                    {"batch_id", s.batch_id},
                    {"tokens", s.tokens},
                    {"created_unix_ms", absl::ToUnixMillis(s.created)},
                    {"custom_ids", s.custom_ids}});
  }
  absl::Status st = MakeDirs(settings_.state_dir);
  if (st.ok()) st = WriteFileAtomic(state_path_, json{{"batches", list}}.dump() + "\n");
  if (!st.ok()) MEDEVAL_LOG(ERROR) << "saving the batch ids failed: " << st.message();
  return st;
}

void BatchRunner::Loop() {
  // Batches whose creation was interrupted: find them, or create them now.
  std::vector<std::string> uncreated;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, s] : submitted_) {
      if (s.batch_id.empty()) uncreated.push_back(key);
    }
  }
  for (const std::string& file : uncreated) {
    BatchClient client = ClientFor(file);
    auto found = client.FindByInputFile(file);
    if (!found.ok()) found = client.Create(file, json{{"medeval", "batch"}});
    absl::MutexLock lock(&mu_);
    if (found.ok()) {
      submitted_[file].batch_id = found->id;
      submitted_[file].info = *found;
    } else {
      MEDEVAL_LOG(WARNING) << "the batch over " << file << " cannot be found or created ("
                           << found.status().message() << "); its questions are asked again";
      for (const std::string& c : submitted_[file].custom_ids) in_batch_.erase(c);
      submitted_.erase(file);
    }
    SaveStateLocked().IgnoreError();
  }
  Changed();  // the batches re-attached to (or none)
  mu_.Lock();
  while (!stopping_) {
    absl::Time wake = absl::InfiniteFuture();
    if (!pending_.empty()) wake = first_pending_ + settings_.linger;
    for (const auto& [key, s] : submitted_) {
      if (!s.batch_id.empty() && s.next_poll != absl::InfiniteFuture()) {
        wake = std::min(wake, s.next_poll);
      }
    }
    const bool full = static_cast<int64_t>(pending_.size()) >= settings_.max_lines;
    if (ready_.empty() && !full && absl::Now() < wake) {
      cv_.WaitWithTimeout(&mu_, std::min(wake - absl::Now(), absl::Seconds(1)));
      continue;
    }
    const absl::Time now = absl::Now();
    std::deque<uint64_t> ready;
    ready.swap(ready_);
    std::vector<uint64_t> submit;
    if (!pending_.empty() && (full || now >= first_pending_ + settings_.linger)) {
      submit.assign(pending_.begin(), pending_.end());
      pending_.clear();
      first_pending_ = absl::InfiniteFuture();
    }
    std::vector<std::string> polls;
    for (const auto& [key, s] : submitted_) {
      if (!s.batch_id.empty() && s.next_poll <= now) polls.push_back(key);
    }
    mu_.Unlock();
    for (uint64_t id : ready) {
      BatchLineResult r;
      {
        absl::MutexLock l(&mu_);
        auto a = asks_.find(id);
        if (a == asks_.end()) continue;
        auto e = early_.find(a->second.custom_id);
        if (e == early_.end()) continue;
        r = std::move(e->second);
        early_.erase(e);
      }
      Deliver(std::move(r), "");
    }
    if (!submit.empty()) SubmitPending(std::move(submit));
    for (const std::string& key : polls) Poll(key);
    mu_.Lock();
  }
  if (!cancel_on_exit_) {
    mu_.Unlock();
    return;
  }
  std::vector<std::pair<std::string, std::string>> ids;  // (input file, batch id)
  for (const auto& [key, s] : submitted_) {
    if (!s.batch_id.empty() && s.next_poll != absl::InfiniteFuture()) {
      ids.emplace_back(key, s.batch_id);
    }
  }
  mu_.Unlock();
  for (const auto& [key, id] : ids) {
    auto c = ClientFor(key).Cancel(id);
    MEDEVAL_LOG(WARNING) << "cancelling batch " << id << " (--batch-on-exit cancel): "
                         << (c.ok() ? c->status : std::string(c.status().message()));
  }
}

void BatchRunner::SubmitPending(std::vector<uint64_t> ids) {
  struct Line {
    uint64_t id;
    std::string custom_id;
    std::string text;
    int64_t tokens;
  };
  struct RunLines {
    std::vector<std::pair<std::string, std::string>> headers;  // the run's extra headers
    std::vector<Line> lines;
  };
  std::map<std::string, RunLines> by_run;  // one model and settings per batch
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t id : ids) {
      auto it = asks_.find(id);
      if (it == asks_.end()) continue;
      const AskEntry& a = it->second;
      if (in_batch_.contains(a.custom_id)) continue;  // a batch has it already
      const std::string& model =
          config_.served_model.empty() ? a.run.model() : config_.served_model;
      std::string body = BuildChatRequest(model, a.run.params(), a.lease);
      // An upper bound of the prompt's tokens: one per code point.
      const int64_t tokens = static_cast<int64_t>(Utf8Length(body));
      std::string text = BatchInputLine(a.custom_id, body);
      text.push_back('\n');
      RunLines& r = by_run[a.run.run_id()];
      if (r.lines.empty()) {
        for (const auto& [k, v] : a.run.params().extra_headers()) r.headers.emplace_back(k, v);
        std::sort(r.headers.begin(), r.headers.end());
      }
      r.lines.push_back({id, a.custom_id, std::move(text), tokens});
    }
  }
  for (auto& [run_id, run_lines] : by_run) {
    const std::vector<Line>& lines = run_lines.lines;
    const auto& headers = run_lines.headers;
    size_t i = 0;
    while (i < lines.size()) {
      std::string content;
      std::vector<std::string> custom_ids;
      std::vector<uint64_t> chunk;
      int64_t tokens = 0;
      while (i < lines.size()) {
        const Line& l = lines[i];
        const bool over =
            static_cast<int64_t>(chunk.size()) + 1 > settings_.max_lines ||
            static_cast<int64_t>(content.size() + l.text.size()) > settings_.max_bytes ||
            (settings_.max_enqueued_tokens > 0 &&
             tokens + l.tokens > settings_.max_enqueued_tokens);
        if (over && !chunk.empty()) break;
        content += l.text;
        custom_ids.push_back(l.custom_id);
        chunk.push_back(l.id);
        tokens += l.tokens;
        ++i;
      }
      // The provider's queue holds at most max_enqueued_tokens: wait for
      // earlier batches to finish first.
      if (settings_.max_enqueued_tokens > 0) {
        absl::MutexLock lock(&mu_);
        int64_t enqueued = 0;
        for (const auto& [key, s] : submitted_) {
          if (s.next_poll != absl::InfiniteFuture()) enqueued += s.tokens;
        }
        if (enqueued > 0 && enqueued + tokens > settings_.max_enqueued_tokens) {
          for (auto it = chunk.rbegin(); it != chunk.rend(); ++it) pending_.push_front(*it);
          for (size_t j = i; j < lines.size(); ++j) pending_.push_back(lines[j].id);
          first_pending_ = absl::Now() + settings_.poll_min;
          return;
        }
      }
      auto fallback = [&](const absl::Status& why) {
        MEDEVAL_LOG(WARNING) << "submitting a batch of " << chunk.size() << " requests failed ("
                             << why.message() << "); asking them online instead";
        for (uint64_t id : chunk) AskOnline(id);
      };
      auto file =
          ClientFor("", headers).UploadFile(absl::StrCat("medeval-", run_id, ".jsonl"), content);
      if (!file.ok()) {
        fallback(file.status());
        continue;
      }
      {
        absl::MutexLock lock(&mu_);
        Submitted& s = submitted_[*file];
        s.run_id = run_id;
        s.headers = headers;
        s.input_file_id = *file;
        s.custom_ids = custom_ids;
        s.tokens = tokens;
        s.backoff = settings_.poll_min;
        for (const std::string& c : custom_ids) in_batch_[c] = *file;
        SaveStateLocked().IgnoreError();  // before creating: a crash now finds it by file
      }
      auto info = ClientFor(*file).Create(*file, json{{"medeval_run", run_id}});
      if (!info.ok()) {
        {
          absl::MutexLock lock(&mu_);
          for (const std::string& c : custom_ids) in_batch_.erase(c);
          submitted_.erase(*file);
          SaveStateLocked().IgnoreError();
        }
        ClientFor("", headers).DeleteFile(*file).IgnoreError();
        fallback(info.status());
        continue;
      }
      MEDEVAL_LOG(INFO) << "batch " << info->id << " created: " << chunk.size() << " requests, "
                        << content.size() << " bytes (window 24h)";
      {
        absl::MutexLock lock(&mu_);
        Submitted& s = submitted_[*file];
        s.batch_id = info->id;
        s.info = *info;
        s.next_poll = absl::Now() + settings_.poll_min;
        SaveStateLocked().IgnoreError();
      }
      Changed();
    }
  }
}

void BatchRunner::Poll(const std::string& key) {
  std::string batch_id;
  {
    absl::MutexLock lock(&mu_);
    auto it = submitted_.find(key);
    if (it == submitted_.end()) return;
    batch_id = it->second.batch_id;
  }
  auto info = ClientFor(key).Get(batch_id);
  bool changed = false;
  absl::ReleasableMutexLock lock(&mu_);
  auto it = submitted_.find(key);
  if (it == submitted_.end()) return;
  Submitted& s = it->second;
  if (info.status().code() == absl::StatusCode::kNotFound) {
    // The endpoint does not know it (a local server restarted, which
    // forgets its batches): nothing will come of it.
    MEDEVAL_LOG(WARNING) << "batch " << batch_id << " is unknown to the endpoint ("
                         << info.status().message() << "); its questions are asked again";
    s.info.id = batch_id;
    s.info.status = "lost";
    s.info.output_file_id.clear();
    s.info.error_file_id.clear();
    s.next_poll = absl::InfiniteFuture();
    const BatchInfo lost = s.info;
    lock.Release();
    Changed();
    Finish(key, lost);
    return;
  }
  if (!info.ok()) {
    MEDEVAL_LOG(WARNING) << "batch " << batch_id << ": " << info.status().message();
  } else {
    if (info->status != s.info.status || info->completed != s.info.completed ||
        info->failed != s.info.failed || info->total != s.info.total) {
      changed = true;
      MEDEVAL_LOG(INFO) << "batch " << batch_id << ": " << info->status << " "
                        << info->completed + info->failed << "/" << info->total << ", waited "
                        << absl::FormatDuration(
                               absl::Trunc(absl::Now() - s.created, absl::Seconds(1)))
                        << " of the 24h window";
    }
    s.info = *info;
    if (info->terminal()) {
      s.next_poll = absl::InfiniteFuture();
      lock.Release();
      Changed();
      Finish(key, *info);
      return;
    }
  }
  s.next_poll = absl::Now() + s.backoff;
  s.backoff = std::min(s.backoff * 2, settings_.poll_max);
  lock.Release();
  if (changed) Changed();
}

void BatchRunner::Finish(const std::string& key, const BatchInfo& info) {
  if (info.status == "failed") {
    MEDEVAL_LOG(WARNING) << "batch " << info.id
                         << " failed: " << (info.errors.empty() ? "no reason given" : info.errors);
  }
  std::vector<BatchLineResult> results;
  for (const std::string& file : {info.output_file_id, info.error_file_id}) {
    if (file.empty()) continue;
    auto content = ClientFor(key).Content(file);
    if (!content.ok()) {
      MEDEVAL_LOG(WARNING) << "batch " << info.id << ": " << content.status().message()
                           << "; trying again";
      absl::MutexLock lock(&mu_);
      auto it = submitted_.find(key);
      if (it != submitted_.end()) it->second.next_poll = absl::Now() + it->second.backoff;
      return;
    }
    for (absl::string_view line : SplitLines(*content)) {
      if (line.empty()) continue;
      auto r = ParseBatchResultLine(line);
      if (!r.ok()) {
        MEDEVAL_LOG(WARNING) << "batch " << info.id
                             << ": unusable result line: " << r.status().message();
        continue;
      }
      results.push_back(std::move(*r));
    }
  }
  std::vector<std::string> custom_ids;
  {
    absl::MutexLock lock(&mu_);
    auto it = submitted_.find(key);
    if (it == submitted_.end()) return;
    custom_ids = it->second.custom_ids;
    // Kept in the state file (finished): a restart reads the results again
    // instead of paying for the questions again.
    for (const std::string& c : custom_ids) in_batch_.erase(c);
  }
  std::set<std::string> seen;
  for (BatchLineResult& r : results) {
    seen.insert(r.custom_id);
    Deliver(std::move(r), info.id);
  }
  for (const std::string& c : custom_ids) {
    if (seen.count(c)) continue;
    BatchLineResult missing;
    missing.custom_id = c;
    missing.error = absl::StrCat("no result in batch ", info.id, " (", info.status, ")");
    Deliver(std::move(missing), info.id);
  }
}

void BatchRunner::Deliver(BatchLineResult result, const std::string& batch_id) {
  ChatBackend::Done done;
  AskOutcome out;
  uint64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    auto c = by_custom_id_.find(result.custom_id);
    if (c == by_custom_id_.end()) {
      early_[result.custom_id] = std::move(result);  // for when it is leased again
      return;
    }
    id = c->second;
    AskEntry& a = asks_[id];
    if (!result.answered) {
      MEDEVAL_LOG(INFO) << "batch " << batch_id << ": " << result.custom_id << ": " << result.error;
      if (settings_.retry_in_batch && !a.retried_in_batch) {
        a.retried_in_batch = true;
        pending_.push_back(id);
        first_pending_ = std::min(first_pending_, absl::Now());
        cv_.SignalAll();
        return;
      }
    } else {
      const int64_t now = absl::ToUnixMillis(absl::Now());
      out.kind = AskOutcome::kAnswered;
      out.record = std::move(result.record);
      out.record.add_flags(kFlagBatch);
      out.record.set_attempts(1);
      out.record.set_worker(config_.worker_name);
      out.record.set_endpoint(online_->public_endpoint());
      out.record.set_started_unix_ms(now);
      out.record.set_finished_unix_ms(now);
      done = std::move(a.done);
      by_custom_id_.erase(c);
      asks_.erase(id);
    }
  }
  if (done) {
    done(std::move(out));
    return;
  }
  AskOnline(id);
}

void BatchRunner::AskOnline(uint64_t id) {
  v1::RunInfo run;
  v1::Lease lease;
  {
    absl::MutexLock lock(&mu_);
    auto it = asks_.find(id);
    if (it == asks_.end()) return;
    run = it->second.run;
    lease = it->second.lease;
  }
  const uint64_t online = online_->Ask(run, lease, [this, id](AskOutcome o) {
    ChatBackend::Done done;
    {
      absl::MutexLock lock(&mu_);
      auto it = asks_.find(id);
      if (it == asks_.end()) return;
      done = std::move(it->second.done);
      auto c = by_custom_id_.find(it->second.custom_id);
      if (c != by_custom_id_.end() && c->second == id) by_custom_id_.erase(c);
      asks_.erase(it);
    }
    done(std::move(o));
  });
  absl::MutexLock lock(&mu_);
  auto it = asks_.find(id);
  if (it != asks_.end()) {
    it->second.online_id = online;
  } else {
    online_->Cancel(online);
  }
}

}  // namespace medeval
