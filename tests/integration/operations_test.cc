// Operating medeval as a service: Prometheus metrics scraped from a real
// coordinator and worker during a run, HTTP and gRPC health probes, and
// graceful shutdown of workers and the coordinator on SIGTERM.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::PromValue;

constexpr int kSampleQuestions = 43;

std::string Scrape(int port, const std::string& path = "/metrics") {
  return testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", port, path)).body;
}
int ProbeStatus(int port, const std::string& path) {
  return testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", port, path)).status;
}

// The standard gRPC health check (grpc.health.v1.Health/Check, service ""),
// spoken through a generic stub: the answer's status field (1 = SERVING).
int GrpcHealth(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // Field 1, varint: 0x08 then the status; an empty message is UNKNOWN (0).
  if (bytes.size() >= 2 && bytes[0] == 0x08) return bytes[1];
  return bytes.empty() ? 0 : -1;
}

class OperationsTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string SimUrl() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  std::string Submit() {
    std::string out, err;
    EXPECT_EQ(
        cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m1"}, &out, &err), 0)
        << err;
    return std::string(absl::StripAsciiWhitespace(out));
  }
  double Answered(const std::string& text, const std::string& run) {
    return PromValue(text, "medeval_questions", {{"run", run}, {"state", "answered"}}).value_or(-1);
  }

  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
  std::unique_ptr<sim::SimServer> sim_;
};

TEST_F(OperationsTest, MetricsMatchTheRunWhileItGoesAndAtTheEnd) {
  sim::SimOptions o;
  o.latency_ms = 60;
  o.ratelimit_rate = 0.15;  // some retries to count
  o.retry_after_s = 0;
  Serve(o);
  const int cport = testing::FreePort(), wport = testing::FreePort();
  cluster_.StartCoordinator({"--metrics-listen", absl::StrCat("127.0.0.1:", cport)});
  EXPECT_EQ(ProbeStatus(cport, "/readyz"), 200);
  EXPECT_EQ(ProbeStatus(cport, "/healthz"), 200);
  EXPECT_EQ(ProbeStatus(cport, "/nothing"), 404);
  EXPECT_EQ(GrpcHealth(cluster_.target()), 1);  // SERVING

  cluster_.StartWorker(
      "w1", {"--model", "m1", "--base-url", SimUrl(), "--concurrency", "4", "--retry-base-ms", "5",
             "--metrics-listen", absl::StrCat("127.0.0.1:", wport)});
  ASSERT_TRUE(testing::WaitFor([&] { return ProbeStatus(wport, "/readyz") == 200; }))
      << Scrape(wport, "/readyz") << cluster_.worker("w1").err();
  const std::string run = Submit();

  // Mid-run: the states add up to the run's questions, one worker holds
  // what is leased, and the worker's requests in flight respect its limit.
  std::string mid;
  ASSERT_TRUE(testing::WaitFor([&] {
    mid = Scrape(cport);
    const double a = Answered(mid, run);
    return a > 0 && a < kSampleQuestions;
  })) << mid;
  double sum = 0;
  for (const char* s : {"queued", "leased", "answered", "failed"}) {
    auto v = PromValue(mid, "medeval_questions", {{"run", run}, {"model", "m1"}, {"state", s}});
    ASSERT_TRUE(v.has_value()) << s << "\n" << mid;
    sum += *v;
  }
  EXPECT_EQ(sum, kSampleQuestions);
  EXPECT_EQ(PromValue(mid, "medeval_run_questions", {{"run", run}}), kSampleQuestions);
  EXPECT_EQ(PromValue(mid, "medeval_run_info", {{"run", run}, {"state", "running"}}), 1);
  EXPECT_EQ(PromValue(mid, "medeval_workers_connected", {{"model", "m1"}}), 1);
  EXPECT_TRUE(PromValue(mid, "medeval_worker_leased_questions", {{"worker", "w1"}}).has_value());
  const std::string wmid = Scrape(wport);
  const double inflight =
      PromValue(wmid, "medeval_requests_in_flight", {{"model", "m1"}}).value_or(-1);
  EXPECT_GE(inflight, 0) << wmid;
  EXPECT_LE(inflight, 4) << wmid;
  EXPECT_EQ(PromValue(wmid, "medeval_worker_connected", {{"model", "m1"}}), 1);

  // At the end, the figures agree with the sim's and with the fetched records.
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  const std::string end = Scrape(cport), wend = Scrape(wport);
  EXPECT_EQ(Answered(end, run), kSampleQuestions);
  EXPECT_EQ(PromValue(end, "medeval_questions", {{"run", run}, {"state", "queued"}}), 0);
  EXPECT_EQ(PromValue(end, "medeval_run_info", {{"run", run}, {"state", "done"}}), 1);
  json stats = Stats();
  const double ok = PromValue(wend, "medeval_requests_total", {{"outcome", "ok"}}).value_or(-1);
  const double limited =
      PromValue(wend, "medeval_requests_total", {{"outcome", "rate_limited"}}).value_or(-1);
  EXPECT_EQ(ok, stats["completed"].get<double>()) << wend;
  EXPECT_EQ(limited, stats["faults"]["ratelimit"].get<double>()) << wend;
  EXPECT_GT(limited, 0);
  EXPECT_EQ(PromValue(wend, "medeval_request_retries_total", {{"reason", "rate_limited"}}),
            limited);
  EXPECT_EQ(PromValue(wend, "medeval_request_duration_seconds_count", {{"model", "m1"}}),
            ok + limited);
  EXPECT_EQ(PromValue(wend, "medeval_questions_done_total", {{"result", "answered"}}),
            kSampleQuestions);
  EXPECT_EQ(PromValue(end, "medeval_run_retries_total", {{"run", run}}), limited);
  // Latencies of 60 ms land above the 0.05 s bucket.
  EXPECT_EQ(PromValue(wend, "medeval_request_duration_seconds_bucket", {{"le", "0.05"}}), limited)
      << "only the immediate 429s are faster than 50 ms\n"
      << wend;
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "fetched"}, &out, &err), 0) << err;
  double prompt = 0, completion = 0;
  for (const json& r : testing::ReadJsonl(tmp_ / "fetched/m1/records.jsonl")) {
    prompt += r["usage"]["prompt_tokens"].get<double>();
    completion += r["usage"]["completion_tokens"].get<double>();
  }
  EXPECT_EQ(PromValue(wend, "medeval_tokens_total", {{"type", "prompt"}}), prompt);
  EXPECT_EQ(PromValue(wend, "medeval_tokens_total", {{"type", "completion"}}), completion);
}

TEST_F(OperationsTest, AnEmbeddedRunServesRunAndRequestMetrics) {
  sim::SimOptions o;
  o.latency_ms = 300;
  o.capacity = 4;
  Serve(o);
  const int port = testing::FreePort();
  testing::Subprocess run;
  run.Start({testing::MedevalBinary(), "run", "--data", testing::SamplesDir(), "--model", "m1",
             "--base-url", SimUrl(), "--out", tmp_ / "out", "--progress", "plain",
             "--metrics-listen", absl::StrCat("127.0.0.1:", port)},
            tmp_.path());
  std::string mid;
  ASSERT_TRUE(testing::WaitFor([&] {
    mid = Scrape(port);
    const double a = PromValue(mid, "medeval_questions", {{"state", "answered"}}).value_or(-1);
    return a > 0 && a < kSampleQuestions;
  })) << mid
      << run.err();
  double sum = 0;
  for (const char* s : {"queued", "leased", "answered", "failed"}) {
    sum += PromValue(mid, "medeval_questions", {{"model", "m1"}, {"state", s}}).value_or(-1);
  }
  EXPECT_EQ(sum, kSampleQuestions) << mid;
  // The workers' request metrics, per model, beside the coordinator's.
  EXPECT_GT(
      PromValue(mid, "medeval_requests_total", {{"model", "m1"}, {"outcome", "ok"}}).value_or(-1),
      0)
      << mid;
  EXPECT_TRUE(PromValue(mid, "medeval_request_duration_seconds_count", {{"model", "m1"}})) << mid;
  EXPECT_EQ(ProbeStatus(port, "/readyz"), 200);
  ASSERT_EQ(run.Wait(), 0) << run.err();
  EXPECT_TRUE(absl::StrContains(run.err(), absl::StrCat("metrics on http://127.0.0.1:", port)))
      << run.err();
  EXPECT_EQ(Stats()["completed"], kSampleQuestions);
}

TEST_F(OperationsTest, ASigtermedWorkerFinishesWhatItAskedAndLosesNothing) {
  sim::SimOptions o;
  o.latency_ms = 400;
  Serve(o);
  const int wport = testing::FreePort();
  cluster_.StartCoordinator();
  cluster_.StartWorker("w1", {"--model", "m1", "--base-url", SimUrl(), "--concurrency", "6",
                              "--metrics-listen", absl::StrCat("127.0.0.1:", wport)});
  const std::string run = Submit();
  // SIGTERM while questions are in flight at the model.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return PromValue(Scrape(wport), "medeval_requests_in_flight").value_or(0) >= 6; }));
  cluster_.worker("w1").Kill(SIGTERM);
  ASSERT_TRUE(testing::WaitFor([&] { return ProbeStatus(wport, "/readyz") != 200; }))
      << "a draining worker is not ready";
  EXPECT_EQ(cluster_.worker("w1").Wait(absl::Seconds(30)), 0) << cluster_.worker("w1").err();
  // Every request it had started was answered and is held by the
  // coordinator; what it had queued went back.
  json stats = Stats();
  EXPECT_EQ(stats["requests"], stats["completed"]);
  auto st = cluster_.client().Status(run, absl::Seconds(5));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->runs(0).answered(), stats["completed"].get<uint64_t>());
  EXPECT_EQ(st->runs(0).leased(), 0u);
  EXPECT_LT(st->runs(0).answered(), static_cast<uint64_t>(kSampleQuestions));

  // Another worker finishes the run; no question was asked twice.
  cluster_.StartWorker("w2", {"--model", "m1", "--base-url", SimUrl(), "--concurrency", "16"});
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  stats = Stats();
  EXPECT_EQ(stats["completed"], kSampleQuestions);
  for (const auto& [key, q] : stats["per_question"].items()) {
    EXPECT_EQ(q["requests"], 1) << key;
  }
}

TEST_F(OperationsTest, ASigtermedCoordinatorFlushesAndResumes) {
  sim::SimOptions o;
  o.latency_ms = 150;
  Serve(o);
  const int cport = testing::FreePort();
  const std::vector<std::string> flags = {"--metrics-listen", absl::StrCat("127.0.0.1:", cport)};
  cluster_.StartCoordinator(flags);
  cluster_.StartWorker("w1", {"--model", "m1", "--base-url", SimUrl(), "--concurrency", "4"});
  const std::string run = Submit();
  ASSERT_TRUE(testing::WaitFor([&] { return Answered(Scrape(cport), run) >= 8; }));
  cluster_.KillCoordinator(SIGTERM);
  EXPECT_EQ(cluster_.WaitCoordinator(), 0) << cluster_.coordinator().err();
  // Everything the coordinator acknowledged is in its journal: after a
  // restart it asks only the rest (the worker reconnects by itself).
  const uint64_t asked_before = Stats()["completed"].get<uint64_t>();
  cluster_.StartCoordinator(flags);
  ASSERT_TRUE(cluster_.WaitRunFinished(run));
  json stats = Stats();
  EXPECT_GE(asked_before, 8u);
  for (const auto& [key, q] : stats["per_question"].items()) {
    EXPECT_EQ(q["answered"], 1) << key << " answered twice";
  }
  EXPECT_EQ(Answered(Scrape(cport), run), kSampleQuestions);
}

}  // namespace
}  // namespace medeval
