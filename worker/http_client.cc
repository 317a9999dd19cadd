#include "worker/http_client.h"

#include <curl/curl.h>

#include <atomic>
#include <map>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace medeval {
namespace {

void GlobalInit() {
  // A function-local static is initialised once, however many threads get here.
  [[maybe_unused]] static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  HttpRequest request;
  HttpClient::Callback done;
  curl_slist* headers = nullptr;
  std::string body;
  std::string retry_after;
  std::string request_id;
  std::string content_encoding;
  bool too_large = false;
  absl::Time start;
};

size_t OnBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  const size_t limit = t->request.max_response_bytes;
  if (limit > 0 && t->body.size() + n > limit) {
    t->too_large = true;
    return 0;  // curl stops the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(ptr, n);
  return n;
}

// The value of header `name` in `line` ("Name: value\r\n"), or false.
bool HeaderValue(absl::string_view line, absl::string_view name, std::string* value) {
  if (line.size() <= name.size() || line[name.size()] != ':' ||
      !absl::StartsWithIgnoreCase(line, name)) {
    return false;
  }
  *value = std::string(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
  return true;
}

size_t OnHeader(char* ptr, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  absl::string_view line(ptr, size * nitems);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after 100 Continue or a redirect).
    t->retry_after.clear();
    t->request_id.clear();
    t->content_encoding.clear();
  } else if (!HeaderValue(line, "retry-after", &t->retry_after) &&
             !HeaderValue(line, "x-request-id", &t->request_id)) {
    HeaderValue(line, "content-encoding", &t->content_encoding);
  }
  return size * nitems;
}

}  // namespace

struct HttpClient::Impl {
  struct TimerOp {
    uint64_t id;
    absl::Time due;
    std::function<void()> fn;
  };

  explicit Impl(Options o) : options(o) {
    GlobalInit();
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(o.max_connections));
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(o.max_connections));
    thread = std::thread([this] { Loop(); });
  }

  ~Impl() {
    Stop();
    for (auto& [id, t] : running) Release(t.get());
    for (CURL* e : idle) curl_easy_cleanup(e);
    curl_multi_cleanup(multi);
  }

  void Stop() ABSL_LOCKS_EXCLUDED(mu, join_mu) {
    {
      absl::MutexLock lock(&mu);
      stopping = true;
    }
    curl_multi_wakeup(multi);
    absl::MutexLock lock(&join_mu);
    // From a callback the loop ends when the callback returns; it cannot
    // wait for itself.
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }

  void Wake() { curl_multi_wakeup(multi); }

  void Start(std::unique_ptr<Transfer> t) {
    CURL* e;
    if (!idle.empty()) {
      e = idle.back();
      idle.pop_back();
      curl_easy_reset(e);
    } else {
      e = curl_easy_init();
    }
    t->easy = e;
    t->start = absl::Now();
    const HttpRequest& r = t->request;
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else if (r.method == "DELETE") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    for (const std::string& h : r.headers) t->headers = curl_slist_append(t->headers, h.c_str());
    // No "Expect: 100-continue" round trip before larger bodies.
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(r.timeout))));
    curl_easy_setopt(
        e, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(std::min(options.connect_timeout, r.timeout))));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (r.max_response_bytes > 0) {
      // Refused at once when Content-Length says so; OnBody counts the rest.
      curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r.max_response_bytes));
    }
    curl_multi_add_handle(multi, e);
    const uint64_t id = t->id;
    running[id] = std::move(t);
  }

  // Detaches the easy handle for reuse; frees the header list.
  void Release(Transfer* t) {
    curl_multi_remove_handle(multi, t->easy);
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    idle.push_back(t->easy);
    t->easy = nullptr;
  }

  void Finish(CURL* e, CURLcode code) {
    Transfer* raw = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &raw);
    auto it = running.find(raw->id);
    std::unique_ptr<Transfer> t = std::move(it->second);
    running.erase(it);
    HttpResponse resp;
    resp.elapsed = absl::Now() - t->start;
    resp.curl_code = code;
    resp.request_id = std::move(t->request_id);
    resp.content_encoding = std::move(t->content_encoding);
    if (t->too_large || code == CURLE_FILESIZE_EXCEEDED) {
      resp.too_large = true;
      resp.error =
          absl::StrCat("the response body is larger than ", t->request.max_response_bytes, " bytes",
                       resp.content_encoding.empty() || resp.content_encoding == "identity"
                           ? ""
                           : " once decompressed");
    } else if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      resp.status = static_cast<int>(status);
      resp.body = std::move(t->body);
      resp.retry_after = std::move(t->retry_after);
      // Redirects are not followed: a 3xx is shown to the caller with its target.
      char* info = nullptr;
      if (curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &info) == CURLE_OK && info != nullptr) {
        resp.location = info;
      }
      info = nullptr;
      if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &info) == CURLE_OK && info != nullptr) {
        resp.content_type = info;
      }
    } else {
      resp.error = curl_easy_strerror(code);
      resp.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    }
    Release(t.get());
    t->done(std::move(resp));
  }

  void Loop() ABSL_LOCKS_EXCLUDED(mu) {
    while (true) {
      std::vector<std::unique_ptr<Transfer>> starts;
      std::vector<uint64_t> cancels, timer_cancels;
      std::vector<TimerOp> timer_adds;
      {
        absl::MutexLock lock(&mu);
        if (stopping) return;
        starts.swap(to_start);
        cancels.swap(to_cancel);
        timer_adds.swap(new_timers);
        timer_cancels.swap(cancelled_timers);
      }
      for (auto& t : starts) Start(std::move(t));
      for (uint64_t id : cancels) {
        auto it = running.find(id);
        if (it == running.end()) continue;
        Release(it->second.get());
        running.erase(it);
      }
      for (auto& op : timer_adds) {
        timer_queue.emplace(op.due, op.id);
        timers.emplace(op.id, std::move(op.fn));
      }
      for (uint64_t id : timer_cancels) timers.erase(id);

      int still = 0;
      curl_multi_perform(multi, &still);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE) Finish(msg->easy_handle, msg->data.result);
      }
      const absl::Time now = absl::Now();
      while (!timer_queue.empty() && timer_queue.begin()->first <= now) {
        uint64_t id = timer_queue.begin()->second;
        timer_queue.erase(timer_queue.begin());
        auto it = timers.find(id);
        if (it == timers.end()) continue;  // cancelled
        std::function<void()> fn = std::move(it->second);
        timers.erase(it);
        fn();
      }
      long wait_ms = 1000;
      long curl_ms = -1;
      curl_multi_timeout(multi, &curl_ms);
      if (curl_ms >= 0) wait_ms = std::min(wait_ms, curl_ms);
      if (!timer_queue.empty()) {
        int64_t until = absl::ToInt64Milliseconds(timer_queue.begin()->first - absl::Now());
        wait_ms = std::min<long>(wait_ms, static_cast<long>(std::max<int64_t>(0, until + 1)));
      }
      {
        absl::MutexLock lock(&mu);
        if (!to_start.empty() || !to_cancel.empty() || !new_timers.empty() ||
            !cancelled_timers.empty() || stopping) {
          wait_ms = 0;
        }
        sleeping = wait_ms > 0;
      }
      if (wait_ms > 0) curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait_ms), nullptr);
      {
        absl::MutexLock lock(&mu);
        sleeping = false;
      }
    }
  }

  const Options options;
  CURLM* multi;
  std::thread thread;
  absl::Mutex join_mu;  // held through the join, so it happens once
  std::atomic<uint64_t> next_id{1};

  absl::Mutex mu;
  std::vector<std::unique_ptr<Transfer>> to_start ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> to_cancel ABSL_GUARDED_BY(mu);
  std::vector<TimerOp> new_timers ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> cancelled_timers ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // The loop is in (or about to enter) curl_multi_poll: new work must wake it.
  // While it runs it checks the queues itself, so no wake-up is needed.
  bool sleeping ABSL_GUARDED_BY(mu) = false;

  // Loop thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Transfer>> running;
  std::multimap<absl::Time, uint64_t> timer_queue;
  absl::flat_hash_map<uint64_t, std::function<void()>> timers;
  std::vector<CURL*> idle;
};

HttpClient::HttpClient(Options options) : impl_(std::make_unique<Impl>(options)) {}
HttpClient::~HttpClient() = default;

void HttpClient::Stop() { impl_->Stop(); }

uint64_t HttpClient::Send(HttpRequest request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->id = impl_->next_id.fetch_add(1);
  t->request = std::move(request);
  t->done = std::move(done);
  const uint64_t id = t->id;
  bool wake;
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->to_start.push_back(std::move(t));
    wake = impl_->sleeping;
  }
  if (wake) impl_->Wake();
  return id;
}

void HttpClient::Cancel(uint64_t id) {
  {
    absl::MutexLock lock(&impl_->mu);
    // Not started yet: drop it here.
    auto& q = impl_->to_start;
    for (auto it = q.begin(); it != q.end(); ++it) {
      if ((*it)->id == id) {
        q.erase(it);
        return;
      }
    }
    impl_->to_cancel.push_back(id);
    if (!impl_->sleeping) return;
  }
  impl_->Wake();
}

uint64_t HttpClient::After(absl::Duration delay, std::function<void()> fn) {
  const uint64_t id = impl_->next_id.fetch_add(1);
  bool wake;
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->new_timers.push_back({id, absl::Now() + delay, std::move(fn)});
    wake = impl_->sleeping;
  }
  if (wake) impl_->Wake();
  return id;
}

void HttpClient::CancelTimer(uint64_t id) {
  {
    absl::MutexLock lock(&impl_->mu);
    auto& q = impl_->new_timers;
    for (auto it = q.begin(); it != q.end(); ++it) {
      if (it->id == id) {
        q.erase(it);
        return;
      }
    }
    impl_->cancelled_timers.push_back(id);
    if (!impl_->sleeping) return;
  }
  impl_->Wake();
}

}  // namespace medeval
