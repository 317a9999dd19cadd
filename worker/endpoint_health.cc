#include "worker/endpoint_health.h"

#include <curl/curl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/utf8.h"

namespace medeval {

DownSignal ClassifyDownSignal(const HttpResponse& r, bool usable_answer) {
  // A response arrived but could not be read (over the size cap, a body not
  // in its declared encoding): the server is alive; that is the answer's
  // problem.
  if (r.too_large || r.curl_code == CURLE_BAD_CONTENT_ENCODING ||
      r.curl_code == CURLE_WRITE_ERROR) {
    return DownSignal::kNone;
  }
  if (!r.error.empty()) {
    switch (r.curl_code) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_SSL_CONNECT_ERROR:
        return DownSignal::kDefinitive;
      default:
        return DownSignal::kSuspect;  // reset, empty reply, timeout, ...
    }
  }
  if (r.status == 502 || r.status == 503 || r.status == 504) return DownSignal::kSuspect;
  // A 2xx proves the server works, whatever it answered (an empty or
  // unusable answer is that question's failure, retried and then failed).
  if (r.status >= 200 && r.status < 300) return DownSignal::kNone;
  if (r.status == 429) return DownSignal::kNone;  // alive, asking us to slow down
  if (r.status >= 400 && r.status < 500 && r.status != 408) return DownSignal::kNone;
  return DownSignal::kRepeated;  // 500, 408, 3xx, ...
}

bool EndpointHealth::Record(DownSignal signal, uint64_t ask, const std::string& error,
                            absl::Time now) {
  if (signal == DownSignal::kNone) {
    last_alive_ = now;
    Reset();
    return false;
  }
  if (signal == DownSignal::kRepeated && error != last_error_) streak_ = 0;
  if (streak_ == 0) {
    streak_ask_ = ask;
    streak_others_ = false;
  } else if (ask != streak_ask_) {
    streak_others_ = true;
  }
  ++streak_;
  last_error_ = error;
  switch (signal) {
    case DownSignal::kDefinitive:
      return true;
    case DownSignal::kSuspect:
      return streak_ >= threshold_;
    case DownSignal::kRepeated:
      // A weaker sign than a refused connection: twice as many in a row.
      return streak_ >= 2 * threshold_ && streak_others_;
    case DownSignal::kNone:
      break;
  }
  return false;
}

void EndpointHealth::Reset() {
  streak_ = 0;
  streak_others_ = false;
  last_error_.clear();
}

std::string FirstLineOfBody(const std::string& body, size_t max) {
  std::string line;
  const size_t t = body.find("<title>");
  if (t != std::string::npos) {
    const size_t e = body.find("</title>", t);
    if (e != std::string::npos) line = body.substr(t + 7, e - t - 7);
  }
  if (line.empty()) {
    for (absl::string_view l : absl::StrSplit(body, '\n')) {
      l = absl::StripAsciiWhitespace(l);
      if (!l.empty()) {
        line = std::string(l);
        break;
      }
    }
  }
  std::string out(Utf8Prefix(line, max));
  if (out.size() < line.size()) out += "...";
  return out.empty() ? "(empty body)" : out;
}

std::string DescribeDown(const HttpResponse& r) {
  if (r.timed_out) {
    return absl::StrCat("no response within ",
                        absl::FormatDuration(absl::Trunc(r.elapsed, absl::Seconds(1))));
  }
  if (!r.error.empty()) {
    const char* what = nullptr;
    switch (r.curl_code) {
      case CURLE_COULDNT_CONNECT:
        what = "connection refused";
        break;
      case CURLE_COULDNT_RESOLVE_HOST:
        what = "the host name does not resolve";
        break;
      case CURLE_SSL_CONNECT_ERROR:
        what = "the TLS handshake failed";
        break;
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
        what = "connection reset";
        break;
      case CURLE_GOT_NOTHING:
        what = "the server closed the connection without answering";
        break;
      default:
        return r.error;
    }
    return absl::StrCat(what, " (", r.error, ")");
  }
  return absl::StrCat("HTTP ", r.status, ": ", FirstLineOfBody(r.body, 80));
}

}  // namespace medeval
