// Telling "the endpoint is down" from "this question failed", judging
// GET /models at start-up, and Retry-After's cap, against real simulated
// servers where a server is involved.
#include "worker/endpoint_health.h"

#include <curl/curl.h>

#include <future>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/url.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"
#include "worker/chat_backend.h"
#include "worker/endpoint_probe.h"

namespace medeval {
namespace {

HttpResponse Status(int status, std::string body = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Transport(int curl_code, std::string error) {
  HttpResponse r;
  r.curl_code = curl_code;
  r.error = std::move(error);
  r.timed_out = curl_code == CURLE_OPERATION_TIMEDOUT;
  return r;
}

TEST(ClassifyDownSignalTest, TransportAndGatewayErrorsAreTheEndpoint) {
  EXPECT_EQ(ClassifyDownSignal(Transport(CURLE_COULDNT_CONNECT, "x"), false),
            DownSignal::kDefinitive);
  EXPECT_EQ(ClassifyDownSignal(Transport(CURLE_COULDNT_RESOLVE_HOST, "x"), false),
            DownSignal::kDefinitive);
  EXPECT_EQ(ClassifyDownSignal(Transport(CURLE_RECV_ERROR, "x"), false), DownSignal::kSuspect);
  EXPECT_EQ(ClassifyDownSignal(Transport(CURLE_OPERATION_TIMEDOUT, "x"), false),
            DownSignal::kSuspect);
  for (int s : {502, 503, 504})
    EXPECT_EQ(ClassifyDownSignal(Status(s), false), DownSignal::kSuspect);
  EXPECT_EQ(ClassifyDownSignal(Status(500), false), DownSignal::kRepeated);
  EXPECT_EQ(ClassifyDownSignal(Status(200), false), DownSignal::kNone);  // alive, bad answer
  // The server works, whatever it thinks of the question.
  for (int s : {400, 413, 422, 429})
    EXPECT_EQ(ClassifyDownSignal(Status(s), false), DownSignal::kNone);
  EXPECT_EQ(ClassifyDownSignal(Status(200), true), DownSignal::kNone);
}

TEST(EndpointHealthTest, TripsOnARunOfFailuresWithNothingAnsweredBetween) {
  EndpointHealth h(3);
  const absl::Time t = absl::Now();
  EXPECT_FALSE(h.Record(DownSignal::kSuspect, 1, "reset", t));
  EXPECT_FALSE(h.Record(DownSignal::kSuspect, 2, "reset", t));
  EXPECT_FALSE(h.Record(DownSignal::kNone, 3, "", t));  // an answer in between
  EXPECT_EQ(h.last_alive(), t);
  EXPECT_FALSE(h.Record(DownSignal::kSuspect, 1, "reset", t));
  EXPECT_FALSE(h.Record(DownSignal::kSuspect, 2, "502", t));
  EXPECT_TRUE(h.Record(DownSignal::kSuspect, 3, "timeout", t));
  h.Reset();
  EXPECT_TRUE(h.Record(DownSignal::kDefinitive, 1, "refused", t));
}

TEST(EndpointHealthTest, TheSameOtherErrorTripsOnlyAcrossQuestions) {
  EndpointHealth h(3);
  const absl::Time t = absl::Now();
  // One question that always gets a 500 is that question's problem.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(h.Record(DownSignal::kRepeated, 7, "HTTP 500: x", t));
  h.Reset();
  EXPECT_FALSE(h.Record(DownSignal::kRepeated, 1, "HTTP 500: x", t));
  // Another error starts a new run; six of the same in a row (twice the
  // threshold: weaker than a refused connection) across questions trip it.
  for (int q = 2; q < 7; ++q) EXPECT_FALSE(h.Record(DownSignal::kRepeated, q, "HTTP 500: y", t));
  EXPECT_TRUE(h.Record(DownSignal::kRepeated, 7, "HTTP 500: y", t));
}

BackendConfig ConfigFor(const std::string& base) {
  BackendConfig b;
  b.endpoint = *ParseEndpoint(base);
  b.api_key = "secret-key-123";
  return b;
}

TEST(JudgeModelsResponseTest, OnlyAJsonModelListIsAnOpenAiApi) {
  const BackendConfig b = ConfigFor("http://h:8000/v1");
  HttpResponse html = Status(404, "<html>\r\n<head><title>404 Not Found</title></head>\r\n</html>");
  auto r = JudgeModelsResponse(html, b, "m");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "this is not an OpenAI-compatible API at http://h:8000/v1: GET "
            "http://h:8000/v1/models answered HTTP 404, 404 Not Found; the base URL usually "
            "ends in /v1");
  EXPECT_EQ(JudgeModelsResponse(Status(200, "<html>hi</html>"), b, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(JudgeModelsResponse(Status(503, "<title>503</title>"), b, "m").status().code(),
            absl::StatusCode::kUnavailable);
  auto denied = JudgeModelsResponse(Status(401, "bad key secret-key-123"), b, "m");
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(absl::StrContains(denied.status().message(), "secret-key-123"));
  HttpResponse moved = Status(308);
  moved.location = "https://h/v1/models";
  auto m = JudgeModelsResponse(moved, b, "m");
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(m.status().message(), "redirected (HTTP 308) to https://h/v1/models"))
      << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), "pass --base-url https://h/v1"));

  auto ok = JudgeModelsResponse(Status(200, R"({"object":"list","data":[{"id":"a"},{"id":"b"}]})"),
                                b, "b");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->models, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ok->warnings.empty());
  auto unlisted = JudgeModelsResponse(Status(200, R"({"data":[{"id":"a"}]})"), b, "z");
  ASSERT_TRUE(unlisted.ok());
  ASSERT_EQ(unlisted->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(unlisted->warnings[0], "'z' is not among those"))
      << unlisted->warnings[0];
}

// The backend in front of real servers: what it hands back, what it fails.
class BackendHealthTest : public ::testing::Test {
 protected:
  struct Result {
    AskOutcome outcome;
    std::vector<std::string> downs;
  };
  Result Ask(BackendConfig cfg, int attempts) {
    cfg.worker_name = "w";
    cfg.retry_base = absl::Milliseconds(2);
    ChatBackend backend(&http_, cfg);
    std::mutex mu;
    std::vector<std::string> downs;
    BackendHooks hooks;
    hooks.on_endpoint_down = [&](const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      downs.push_back(why);
    };
    backend.SetHooks(hooks);
    v1::RunInfo run;
    run.set_run_id("r");
    run.set_model("m");
    run.mutable_params()->set_max_attempts(attempts);
    run.mutable_params()->set_timeout_s(5);
    v1::Lease lease;
    lease.set_lease_id(1);
    lease.set_question("q");
    std::promise<AskOutcome> p;
    backend.Ask(run, lease, [&p](AskOutcome o) { p.set_value(std::move(o)); });
    Result r{p.get_future().get(), {}};
    std::lock_guard<std::mutex> lock(mu);
    r.downs = downs;
    return r;
  }
  HttpClient http_{HttpClient::Options{4, absl::Seconds(2)}};
};

TEST_F(BackendHealthTest, ConnectionRefusedHandsTheQuestionBackUnspent) {
  const int port = testing::FreePort();  // nothing listens there
  Result r = Ask(ConfigFor(absl::StrCat("http://127.0.0.1:", port, "/v1")), 6);
  EXPECT_EQ(r.outcome.kind, AskOutcome::kHandBack) << r.outcome.record.last_error();
  ASSERT_EQ(r.downs.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(r.downs[0], "connection refused")) << r.downs[0];
}

TEST_F(BackendHealthTest, AProxyWithoutItsServerIsDownAfterARunOf502s) {
  sim::SimOptions o;
  o.endpoint_faults.proxy_status = 502;
  sim::SimServer sim(o);
  ASSERT_TRUE(sim.Start().ok());
  // Two attempts would fail the question; the third 502 in a row is the endpoint.
  Result r = Ask(ConfigFor(absl::StrCat("http://127.0.0.1:", sim.port(), "/v1")), 2);
  EXPECT_EQ(r.outcome.kind, AskOutcome::kHandBack);
  ASSERT_EQ(r.downs.size(), 1u);
  EXPECT_EQ(r.downs[0], "HTTP 502: 502 Bad Gateway");
}

TEST_F(BackendHealthTest, RetryAfterIsHonouredOnlyUpToItsCap) {
  sim::SimOptions o;
  o.ratelimit_rate = 1;
  o.retry_after_s = 3600;
  sim::SimServer sim(o);
  ASSERT_TRUE(sim.Start().ok());
  BackendConfig cfg = ConfigFor(absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"));
  cfg.max_retry_after = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  Result r = Ask(cfg, 3);
  EXPECT_EQ(r.outcome.kind, AskOutcome::kFailed);
  EXPECT_EQ(r.outcome.record.attempts(), 3);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
}

}  // namespace
}  // namespace medeval
