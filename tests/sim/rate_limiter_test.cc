#include "sim/rate_limiter.h"

#include "gtest/gtest.h"

namespace medeval::sim {
namespace {

TEST(RateLimiterTest, AllowsABurstOfOneSecondThenTheRate) {
  RateLimiter limiter(10);
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  absl::Duration wait;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.Admit(t0, &wait)) << i;
  EXPECT_FALSE(limiter.Admit(t0, &wait));
  EXPECT_EQ(wait, absl::Milliseconds(100)) << "one token comes every 1/10 s";
  EXPECT_FALSE(limiter.Admit(t0 + absl::Milliseconds(50), &wait));
  EXPECT_EQ(wait, absl::Milliseconds(50));
  EXPECT_TRUE(limiter.Admit(t0 + absl::Milliseconds(100), &wait));
  EXPECT_FALSE(limiter.Admit(t0 + absl::Milliseconds(100), &wait));
  EXPECT_EQ(limiter.admitted(), 11u);
  EXPECT_EQ(limiter.limited(), 3u);
}

TEST(RateLimiterTest, ArrivalsBelowTheRatePassAndAboveItAreCutToTheRate) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  absl::Duration wait;
  RateLimiter below(20);
  for (int i = 0; i < 2000; ++i) {  // 19/s for 105 s
    EXPECT_TRUE(below.Admit(t0 + i * absl::Seconds(1) / 19, &wait)) << i;
  }
  RateLimiter above(20);
  int passed = 0;
  for (int i = 0; i < 4000; ++i) {  // 40/s for 100 s
    passed += above.Admit(t0 + i * absl::Milliseconds(25), &wait);
  }
  EXPECT_NEAR(passed, 20 * 100 + 20, 2) << "the rate, plus the first second's burst";
}

TEST(RateLimiterTest, ZeroAdmitsEveryoneAndANewRateStartsFull) {
  RateLimiter limiter(0);
  absl::Duration wait;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.Admit(t0, &wait));
  limiter.set_rps(2);
  EXPECT_TRUE(limiter.Admit(t0, &wait));
  EXPECT_TRUE(limiter.Admit(t0, &wait));
  EXPECT_FALSE(limiter.Admit(t0, &wait));
  EXPECT_EQ(limiter.rps(), 2);
  RateLimiter slow(0.5);  // a burst of at least one request
  EXPECT_TRUE(slow.Admit(t0, &wait));
  EXPECT_FALSE(slow.Admit(t0 + absl::Seconds(1), &wait));
  EXPECT_EQ(wait, absl::Seconds(1));
  EXPECT_TRUE(slow.Admit(t0 + absl::Seconds(2), &wait));
}

}  // namespace
}  // namespace medeval::sim
