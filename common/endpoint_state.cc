#include "common/endpoint_state.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace medeval {

std::string EndpointDownText(const v1::EndpointState& state) {
  const absl::Time since = absl::FromUnixMillis(state.since_unix_ms());
  return absl::StrCat("endpoint down since ",
                      absl::FormatTime("%H:%M:%S", since, absl::LocalTimeZone()), ": ",
                      state.reason(), ", probing every ",
                      absl::FormatDuration(absl::Milliseconds(state.probe_interval_ms())));
}

}  // namespace medeval
