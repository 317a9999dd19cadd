#include "common/ops_server.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metric_families.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

// A collectable built at scrape time, the way the coordinator's is.
class Snapshot : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    MetricFamilies f;
    f.Gauge("demo_queued", "Queued.", {{"run", "r1"}}, static_cast<double>(scrapes_++));
    f.Declare("demo_empty", "Has no samples yet.", prometheus::MetricType::Counter);
    return f.Take();
  }
  mutable std::atomic<int> scrapes_{0};
};

std::string Url(const OpsServer& s, const std::string& path) {
  return absl::StrCat("http://127.0.0.1:", s.port(), path);
}

TEST(OpsServerTest, ServesMetricsFromEveryCollectable) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("demo_requests_total")
      .Help("Requests.")
      .Register(*registry)
      .Add({{"outcome", "ok"}})
      .Increment(3);
  auto snapshot = std::make_shared<Snapshot>();
  auto server = OpsServer::Start({"127.0.0.1:0", {registry, snapshot}, nullptr, nullptr});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  auto r = testing::HttpCall("GET", Url(**server, "/metrics"));
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(testing::PromValue(r.body, "demo_requests_total", {{"outcome", "ok"}}), 3);
  EXPECT_EQ(testing::PromValue(r.body, "demo_queued", {{"run", "r1"}}), 0);
  EXPECT_TRUE(absl::StrContains(r.body, "# TYPE demo_empty counter")) << r.body;
  // Collected anew on each scrape, on keep-alive or new connections alike.
  r = testing::HttpCall("GET", Url(**server, "/metrics?x=1"));
  EXPECT_EQ(testing::PromValue(r.body, "demo_queued", {{"run", "r1"}}), 1);
  EXPECT_EQ(testing::HttpCall("GET", Url(**server, "/other")).status, 404);
  EXPECT_EQ(testing::HttpCall("POST", Url(**server, "/metrics"), "x").status, 405);
}

TEST(OpsServerTest, ProbesReportWhyTheyFail) {
  std::atomic<bool> ready{false};
  OpsServer::Options o;
  o.listen = "127.0.0.1:0";
  o.ready = [&]() -> absl::Status {
    if (ready) return absl::OkStatus();
    return absl::UnavailableError("recovering runs from the journal");
  };
  auto server = OpsServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(testing::HttpCall("GET", Url(**server, "/healthz")).status, 200);
  auto r = testing::HttpCall("GET", Url(**server, "/readyz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "recovering runs from the journal\n");
  ready = true;
  EXPECT_EQ(testing::HttpCall("GET", Url(**server, "/readyz")).status, 200);
}

TEST(OpsServerTest, BadOrTakenAddressesAreClearErrors) {
  for (const char* bad : {"9100", "host:", "host:port", "127.0.0.1:70000"}) {
    auto s = OpsServer::Start({bad, {}, nullptr, nullptr});
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(s.status().message(), "--metrics-listen")) << s.status();
  }
  auto first = OpsServer::Start({"127.0.0.1:0", {}, nullptr, nullptr});
  ASSERT_TRUE(first.ok());
  auto second =
      OpsServer::Start({absl::StrCat("127.0.0.1:", (*first)->port()), {}, nullptr, nullptr});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace medeval
