#include "client/progress.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "worker/endpoint_health.h"

namespace medeval {

std::string ShortDuration(double seconds) {
  if (seconds < 0 || std::isnan(seconds) || std::isinf(seconds)) return "?";
  int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

ProgressReporter::ProgressReporter(std::ostream& out, bool tty, absl::Duration plain_interval)
    : out_(out), tty_(tty), interval_(plain_interval) {}

std::string ProgressReporter::Line(const v1::RunStatus& r, bool bar, int width) {
  const uint64_t done = r.answered() + r.failed();
  const double frac =
      r.total() > 0 ? static_cast<double>(done) / static_cast<double>(r.total()) : 0;
  std::string s = absl::StrCat(r.model(), " ");
  if (bar) {
    int filled = static_cast<int>(frac * width);
    s += absl::StrCat("[", std::string(static_cast<size_t>(filled), '#'),
                      std::string(static_cast<size_t>(width - filled), '.'), "] ");
  }
  absl::StrAppendFormat(&s, "%d/%d %.0f%% %.1f answers/s ETA %s", done, r.total(), frac * 100,
                        r.rate(), r.state() == "running" ? ShortDuration(r.eta_s()) : "-");
  absl::StrAppendFormat(&s, " retries %d failed %d", r.retries(), r.failed());
  if (r.state() != "running") s += absl::StrCat(" (", r.state(), ")");
  if (r.endpoint_state().down()) s += absl::StrCat(" -- ", EndpointDownText(r.endpoint_state()));
  if (r.paused_until_unix_ms() > 0) {
    s += absl::StrCat(" -- paused until ",
                      absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(r.paused_until_unix_ms()),
                                       absl::LocalTimeZone()),
                      " (429 with Retry-After)");
  }
  return s;
}

void ProgressReporter::Update(const std::vector<v1::RunStatus>& runs, int workers) {
  if (tty_) {
    std::string frame;
    if (drawn_ > 0) frame += absl::StrCat("\x1b[", drawn_, "A");  // back to the first line
    for (const auto& r : runs) frame += absl::StrCat("\r\x1b[2K", Line(r, true), "\n");
    frame += absl::StrCat("\r\x1b[2K", workers, " workers connected\n");
    out_ << frame << std::flush;
    drawn_ = runs.size() + 1;
    return;
  }
  const absl::Time now = absl::Now();
  if (now - last_plain_ < interval_) return;
  last_plain_ = now;
  for (const auto& r : runs) out_ << "progress: " << Line(r, false) << "\n";
  out_ << std::flush;
}

void ProgressReporter::Done() {
  drawn_ = 0;
  out_ << std::flush;
}

}  // namespace medeval
