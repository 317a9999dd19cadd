#include "common/endpoint_state.h"

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(EndpointDownTextTest, SaysSinceWhenWhyAndHowOften) {
  v1::EndpointState s;
  s.set_down(true);
  s.set_reason("connection refused");
  s.set_since_unix_ms(absl::ToUnixMillis(absl::Now()));
  s.set_probe_interval_ms(4000);
  const std::string t = EndpointDownText(s);
  EXPECT_TRUE(absl::StartsWith(t, "endpoint down since ")) << t;
  EXPECT_TRUE(absl::EndsWith(t, ": connection refused, probing every 4s")) << t;
  EXPECT_EQ(
      t.size(),
      std::string("endpoint down since HH:MM:SS: connection refused, probing every 4s").size());
}

}  // namespace
}  // namespace medeval
