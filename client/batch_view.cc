#include "client/batch_view.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/progress.h"
#include "client/run_folder.h"
#include "common/utf8.h"

namespace medeval {
namespace {

// "3m07s of the 24h window" / "3m07s of 24h".
std::string Waited(const v1::BatchState& b, absl::Time now, bool long_form) {
  const absl::Time created = absl::FromUnixMillis(b.created_unix_ms());
  const double waited = absl::ToDoubleSeconds(now - created);
  std::string s = absl::StrCat("waited ", ShortDuration(std::max(0.0, waited)));
  if (b.expires_unix_ms() > b.created_unix_ms()) {
    const int64_t window_s = (b.expires_unix_ms() - b.created_unix_ms() + 500) / 1000;
    // Windows are whole hours ("24h"), as providers name them.
    const std::string window = window_s % 3600 == 0 ? absl::StrCat(window_s / 3600, "h")
                                                    : ShortDuration(static_cast<double>(window_s));
    absl::StrAppend(&s, " of ", long_form ? "the " : "", window, long_form ? " window" : "");
  }
  return s;
}

// Provider states come from the network: escaped, kept short.
std::string State(const v1::BatchState& b) {
  return b.status().empty() ? "(being created)" : EscapeControl(b.status().substr(0, 32));
}

}  // namespace

bool BatchFinished(const v1::BatchState& b) {
  const std::string& s = b.status();
  return s == "completed" || s == "failed" || s == "expired" || s == "cancelled" || s == "lost";
}

std::string BatchText(const v1::BatchState& b, absl::Time now) {
  std::string s = absl::StrCat(b.batch_id().empty() ? "batch" : EscapeControl(b.batch_id()), ": ",
                               State(b), " ");
  if (b.status().empty()) return absl::StrCat(s, GroupedNumber(b.total()), " requests");
  absl::StrAppend(&s, GroupedNumber(b.completed() + b.failed()), "/", GroupedNumber(b.total()));
  if (b.failed() > 0) absl::StrAppend(&s, " (", GroupedNumber(b.failed()), " failed)");
  if (BatchFinished(b)) return s;
  absl::StrAppend(&s, ", ", Waited(b, now, true));
  if (b.expires_unix_ms() > 0) {
    absl::StrAppend(&s, " (ends ",
                    absl::FormatTime("%b %d %H:%M", absl::FromUnixMillis(b.expires_unix_ms()),
                                     absl::LocalTimeZone()),
                    ")");
  }
  return s;
}

std::string BatchesSummary(const v1::RunStatus& run, absl::Time now) {
  std::map<std::string, int> states;
  uint64_t done = 0, total = 0;
  const v1::BatchState* oldest = nullptr;
  int open = 0;
  for (const v1::BatchState& b : run.batches()) {
    if (BatchFinished(b)) continue;
    ++open;
    ++states[State(b)];
    done += b.completed() + b.failed();
    total += b.total();
    if (oldest == nullptr || b.created_unix_ms() < oldest->created_unix_ms()) oldest = &b;
  }
  if (open == 0) return "";
  std::string s;
  if (open == 1) {
    s = absl::StrCat("batch ", states.begin()->first, " ");
  } else {
    std::vector<std::string> parts;
    for (const auto& [state, n] : states) parts.push_back(absl::StrCat(n, " ", state));
    s = absl::StrCat(open, " batches: ", absl::StrJoin(parts, ", "), ", ");
  }
  return absl::StrCat(s, GroupedNumber(done), "/", GroupedNumber(total), ", ",
                      Waited(*oldest, now, false));
}

}  // namespace medeval
