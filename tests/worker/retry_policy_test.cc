#include "worker/retry_policy.h"

#include <curl/curl.h>

#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(ClassifyTest, HttpStatuses) {
  for (int s : {429, 408, 500, 502, 503, 504, 529}) {
    EXPECT_EQ(ClassifyHttpStatus(s), FailureKind::kTransient) << s;
  }
  for (int s : {401, 403, 404, 405}) EXPECT_EQ(ClassifyHttpStatus(s), FailureKind::kBackend) << s;
  for (int s : {400, 413, 422}) EXPECT_EQ(ClassifyHttpStatus(s), FailureKind::kQuestion) << s;
}

TEST(ClassifyTest, TransportErrors) {
  EXPECT_EQ(ClassifyTransportError(CURLE_OPERATION_TIMEDOUT), FailureKind::kTransient);
  EXPECT_EQ(ClassifyTransportError(CURLE_COULDNT_CONNECT), FailureKind::kTransient);
  EXPECT_EQ(ClassifyTransportError(CURLE_RECV_ERROR), FailureKind::kTransient);
  EXPECT_EQ(ClassifyTransportError(CURLE_URL_MALFORMAT), FailureKind::kBackend);
}

TEST(ParseRetryAfterTest, SecondsAndDates) {
  absl::Time now = absl::FromUnixSeconds(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 1.5 ", now), absl::Seconds(1.5));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("-3", now).has_value());
}

TEST(RetryPolicyTest, ExponentialBackoffWithJitter) {
  RetryPolicy p({6, absl::Seconds(1), absl::Seconds(10)});
  // Attempt k waits between half and all of base * 2^(k-1), capped.
  EXPECT_EQ(*p.NextDelay(1, FailureKind::kTransient, std::nullopt, 0.0), absl::Milliseconds(500));
  EXPECT_EQ(*p.NextDelay(1, FailureKind::kTransient, std::nullopt, 0.999999),
            absl::Milliseconds(500) + absl::Milliseconds(500) * 0.999999);
  EXPECT_EQ(*p.NextDelay(3, FailureKind::kTransient, std::nullopt, 0.0), absl::Seconds(2));
  EXPECT_EQ(*p.NextDelay(5, FailureKind::kTransient, std::nullopt, 0.0), absl::Seconds(5));
}

TEST(RetryPolicyTest, StopsAtMaxAttemptsAndOnPermanentFailures) {
  RetryPolicy p({3, absl::Seconds(1), absl::Seconds(10)});
  EXPECT_TRUE(p.NextDelay(2, FailureKind::kTransient, std::nullopt, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(3, FailureKind::kTransient, std::nullopt, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(1, FailureKind::kQuestion, std::nullopt, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(1, FailureKind::kBackend, std::nullopt, 0.5).has_value());
}

TEST(RetryPolicyTest, HonoursRetryAfterUpToACap) {
  RetryPolicy::Options o{6, absl::Seconds(1), absl::Seconds(10), absl::Minutes(2)};
  RetryPolicy p(o);
  EXPECT_EQ(*p.NextDelay(1, FailureKind::kTransient, absl::Seconds(42), 0.9), absl::Seconds(42));
  EXPECT_EQ(*p.NextDelay(1, FailureKind::kTransient, absl::Hours(1), 0.9), absl::Minutes(2));
  // "Retry-After: 0" still backs off.
  EXPECT_EQ(*p.NextDelay(3, FailureKind::kTransient, absl::ZeroDuration(), 0.0), absl::Seconds(2));
}

}  // namespace
}  // namespace medeval
