#include "client/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/batch_view.h"
#include "client/run_folder.h"
#include "common/endpoint_state.h"
#include "common/log.h"

namespace medeval {
namespace {

// Characters on screen of UTF-8 text (code points; wide CJK glyphs take two
// columns, so they count twice).
size_t ScreenWidth(absl::string_view s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;
    w += c >= 0xE3 && c <= 0xED ? 2 : 1;  // U+3000..U+DFFF: CJK, kana, hangul
  }
  return w;
}

// The longest prefix of `s` (whole code points) at most `width` wide.
std::string FitWidth(absl::string_view s, size_t width) {
  size_t w = 0, i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    size_t cw = c >= 0xE3 && c <= 0xED ? 2 : 1;
    if (w + cw > width || i + len > s.size()) break;
    w += cw;
    i += len;
  }
  return std::string(s.substr(0, i));
}

}  // namespace

std::string ShortDuration(double seconds) {
  if (seconds < 0 || std::isnan(seconds) || std::isinf(seconds)) return "?";
  int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

ModelHealth HealthOf(const std::string& model, const std::vector<v1::WorkerStatus>& workers) {
  ModelHealth h;
  for (const v1::WorkerStatus& w : workers) {
    if (w.model() != model || !w.connected()) continue;
    ++h.workers;
    if (w.paused()) ++h.paused;
    // Hook for endpoint health: a connected worker that reports an error is
    // one whose endpoint is not answering.
    if (!w.error().empty() && h.down.empty()) h.down = w.error();
  }
  return h;
}

ProgressReporter::ProgressReporter(std::ostream& out, bool tty, absl::Duration plain_interval,
                                   int columns)
    : out_(out), tty_(tty), interval_(plain_interval), columns_(columns) {
  // Log lines written while the bars are live go above them instead of
  // being overwritten by the next redraw.
  if (tty_) SetLogSink([this](const std::string& line) { Print(line); });
}

ProgressReporter::~ProgressReporter() {
  if (tty_) SetLogSink(nullptr);
}

int ProgressReporter::Columns() const {
  if (columns_ > 0) return columns_;
  struct winsize ws;
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  int c = 0;
  const char* env = std::getenv("COLUMNS");
  if (env != nullptr && absl::SimpleAtoi(env, &c) && c > 0) return c;
  return 80;
}

std::string ConcurrencyText(const v1::RunStatus& r) {
  static const auto* kWhy = new absl::flat_hash_map<std::string, const char*>{
      {"start", "starting"},        {"slow_start", "rising"},    {"gain", "more throughput"},
      {"fell", "back to the best"}, {"latency", "latency grew"}, {"probe", "probing"},
      {"rate_limited", "429s"},     {"timeout", "timeouts"}};
  auto it = kWhy->find(r.concurrency_cause());
  return absl::StrCat("auto ", r.concurrency_limit(), " in flight (",
                      it != kWhy->end() ? it->second : r.concurrency_cause(), ")");
}

std::string ProgressReporter::Line(const v1::RunStatus& r, bool bar, int columns,
                                   const ModelHealth* health) {
  const uint64_t done = r.answered() + r.failed();
  const double frac =
      r.total() > 0 ? static_cast<double>(done) / static_cast<double>(r.total()) : 0;
  std::string tail =
      absl::StrFormat(" %s/%s %.0f%% %.1f/s ETA %s retries %s failed %s", GroupedNumber(done),
                      GroupedNumber(r.total()), frac * 100, r.rate(),
                      r.state() == "running" ? ShortDuration(r.eta_s()) : "-",
                      GroupedNumber(r.retries()), GroupedNumber(r.failed()));
  if (r.state() != "running") absl::StrAppend(&tail, " (", r.state(), ")");
  if (r.state() == "running" && r.endpoint_state().down()) {
    absl::StrAppend(&tail, " | ", EndpointDownText(r.endpoint_state()));
  } else if (r.state() == "running" && r.paused_until_unix_ms() > 0) {
    absl::StrAppend(&tail, " | paused until ",
                    absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(r.paused_until_unix_ms()),
                                     absl::LocalTimeZone()),
                    " (429 with Retry-After)");
  } else if (health != nullptr && r.state() == "running") {
    if (health->workers == 0) {
      absl::StrAppend(&tail, " | no worker");
    } else if (!health->down.empty()) {
      absl::StrAppend(&tail, " | endpoint down: ", health->down);
    } else if (health->paused == health->workers) {
      absl::StrAppend(&tail, " | paused");
    }
  }
  if (r.state() == "running" && r.concurrency_limit() > 0) {
    absl::StrAppend(&tail, " | ", ConcurrencyText(r));
  }
  if (r.state() == "running") {
    // A batch run waits on its provider: say for what, and how long so far.
    const std::string batches = BatchesSummary(r, absl::Now());
    if (!batches.empty()) absl::StrAppend(&tail, " | ", batches);
  }
  // Room for the line without the last column (a full line would wrap).
  const size_t room = columns > 0 ? static_cast<size_t>(columns - 1) : SIZE_MAX;
  int bar_width = bar ? 30 : 0;
  std::string model = r.model();
  auto compose = [&] {
    std::string s = model;
    if (bar_width > 0) {
      int filled = static_cast<int>(frac * bar_width);
      absl::StrAppend(&s, " [", std::string(static_cast<size_t>(filled), '#'),
                      std::string(static_cast<size_t>(bar_width - filled), '.'), "]");
    }
    return s + tail;
  };
  std::string s = compose();
  if (ScreenWidth(s) <= room) return s;
  // Narrow terminal: a shorter bar, then a shortened model name, then cut.
  while (bar_width > 10 && ScreenWidth(s) > room) {
    bar_width -= 2;
    s = compose();
  }
  const size_t rest = ScreenWidth(s) - ScreenWidth(model);
  if (ScreenWidth(s) > room && room > rest + 4) {
    model = FitWidth(r.model(), room - rest - 1) + "~";
    s = compose();
  }
  return ScreenWidth(s) <= room ? s : FitWidth(s, room);
}

void ProgressReporter::Update(const std::vector<v1::RunStatus>& runs,
                              const std::vector<v1::WorkerStatus>& workers) {
  absl::MutexLock lock(&mu_);
  int connected = 0;
  for (const auto& w : workers) connected += w.connected() ? 1 : 0;
  if (tty_) {
    const int columns = Columns();
    std::string frame;
    for (const auto& r : runs) {
      ModelHealth h = HealthOf(r.model(), workers);
      absl::StrAppend(&frame, Line(r, true, columns, &h), "\n");
    }
    absl::StrAppend(
        &frame,
        FitWidth(absl::StrCat(connected, " workers connected"), static_cast<size_t>(columns - 1)),
        "\n");
    std::string out;
    if (drawn_ > 0) out += absl::StrCat("\x1b[", drawn_, "A");  // back to the first line
    out += "\r\x1b[J";  // clear to the end of the screen: no stale line stays
    out += frame;
    out_ << out << std::flush;
    frame_ = std::move(frame);
    drawn_ = runs.size() + 1;
    return;
  }
  const absl::Time now = absl::Now();
  if (now - last_plain_ < interval_) return;
  last_plain_ = now;
  for (const auto& r : runs) {
    ModelHealth h = HealthOf(r.model(), workers);
    out_ << "progress: " << Line(r, false, 0, &h) << "\n";
  }
  out_ << std::flush;
}

void ProgressReporter::Print(const std::string& text) {
  absl::MutexLock lock(&mu_);
  std::string out;
  if (tty_ && drawn_ > 0) out += absl::StrCat("\x1b[", drawn_, "A\r\x1b[J");
  out += text;
  if (!text.empty() && text.back() != '\n') out += "\n";
  if (tty_ && drawn_ > 0) out += frame_;
  out_ << out << std::flush;
}

void ProgressReporter::Done() {
  absl::MutexLock lock(&mu_);
  drawn_ = 0;
  frame_.clear();
  out_ << std::flush;
}

}  // namespace medeval
