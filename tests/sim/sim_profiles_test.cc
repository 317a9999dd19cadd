// The sim's load profiles over real HTTP: the continuous-batching engine,
// the hosted API's rate limit, and `medeval sim --profile` presets.
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "sim/completion.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;
using testing::HttpCall;

json Body(const std::string& question, bool stream) {
  json b = {{"model", "m1"},
            {"messages",
             {{{"role", "system"}, {"content", "You are a helpful assistant."}},
              {{"role", "user"}, {"content", question}}}}};
  if (stream) {
    b["stream"] = true;
    b["stream_options"] = {{"include_usage", true}};
  }
  return b;
}

// The usage object of a plain or streamed answer.
json UsageOf(const testing::SimpleResponse& r) {
  if (!absl::StartsWith(r.body, "data: ")) return json::parse(r.body)["usage"];
  for (absl::string_view event : absl::StrSplit(r.body, "\n\n", absl::SkipEmpty())) {
    if (event == "data: [DONE]") continue;
    json c = json::parse(event.substr(6));
    if (c.contains("usage")) return c["usage"];
  }
  return nullptr;
}

class SimProfilesTest : public ::testing::Test {
 protected:
  void Serve(SimOptions o) {
    server_ = std::make_unique<SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  testing::SimpleResponse Post(const std::string& path, const json& body) {
    return HttpCall("POST", base_ + path, body.dump(), {"Content-Type: application/json"},
                    absl::Seconds(30));
  }
  json Stats() { return json::parse(server_->StatsJson()); }

  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(SimProfilesTest, TheBatchingEngineServesConcurrentRequestsWithTheirUsage) {
  SimOptions o;
  o.batching_engine = true;
  o.engine.step_ms = 4;
  o.engine.step_ms_per_seq = 0.1;
  o.style.completion_tokens = 100;
  Serve(o);
  constexpr int kClients = 6;
  std::vector<testing::SimpleResponse> answers(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      answers[i] = Post("/v1/chat/completions", Body(absl::StrCat("问题 ", i), i % 2 == 1));
    });
  }
  for (auto& t : clients) t.join();
  int64_t prompt_tokens = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(answers[i].status, 200) << answers[i].body;
    json usage = UsageOf(answers[i]);
    ChatRequest req = *ParseChatRequest(Body(absl::StrCat("问题 ", i), i % 2 == 1).dump());
    SimCompletion want = Complete(req, o.style);
    EXPECT_EQ(usage, UsageJson(want)) << i;
    EXPECT_EQ(usage["completion_tokens"], 100) << "short answers made up with hidden reasoning";
    EXPECT_GT(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    prompt_tokens += want.prompt_tokens;
  }
  json engine = Stats()["engine"];
  EXPECT_EQ(engine["finished"], kClients);
  EXPECT_EQ(engine["decode_tokens"], kClients * 100) << engine;
  EXPECT_EQ(engine["prefill_tokens"], prompt_tokens);
  EXPECT_EQ(engine["running"], 0);
  EXPECT_EQ(engine["queued"], 0);
  EXPECT_EQ(engine["kv_tokens_used"], 0);
  EXPECT_EQ(engine["preemptions"], 0);
  // Batched: far fewer steps than generating one answer after another.
  EXPECT_GE(engine["steps"].get<int>(), 100);
  EXPECT_LT(engine["steps"].get<int>(), kClients * 100) << engine;
  EXPECT_EQ(Stats()["tokens"]["completion"], kClients * 100);
}

TEST_F(SimProfilesTest, TheEngineShowsItsStateWhileGeneratingAndTakesControlSettings) {
  SimOptions o;
  o.batching_engine = true;
  o.engine.step_ms = 20;
  o.engine.kv_tokens = 5000;
  o.style.completion_tokens = 100;  // 2 s per request
  Serve(o);
  std::thread client([&] { Post("/v1/chat/completions", Body("q", false)); });
  ASSERT_TRUE(testing::WaitFor([&] { return Stats()["engine"]["steps"].get<int>() >= 3; }));
  json engine = Stats()["engine"];
  EXPECT_EQ(engine["running"], 1);
  EXPECT_GT(engine["kv_tokens_used"].get<int>(), 0);
  EXPECT_EQ(engine["kv_tokens"], 5000);
  auto set = Post("/control", {{"step_ms", 1}, {"kv_tokens", 8000}, {"preempt", 1}});
  EXPECT_EQ(set.status, 200) << set.body;
  client.join();  // the faster steps end it well within the client's timeout
  engine = Stats()["engine"];
  EXPECT_EQ(engine["kv_tokens"], 8000);
  EXPECT_EQ(engine["settings"]["step_ms"], 1);
  EXPECT_EQ(engine["settings"]["preempt"], true);
  EXPECT_EQ(engine["finished"], 1);
  EXPECT_EQ(Post("/control", {{"kv_tokens", -1}}).status, 400);
  EXPECT_EQ(Post("/control", {{"preempt", "yes"}}).status, 400);
  // A request that could never fit in the cache is refused, as vLLM refuses
  // one longer than its context.
  ASSERT_EQ(Post("/control", {{"kv_tokens", 50}}).status, 200);
  auto big = Post("/v1/chat/completions", Body("q", false));
  EXPECT_EQ(big.status, 400) << big.body;
  EXPECT_EQ(json::parse(big.body)["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(Stats()["in_flight"], 0);
}

TEST_F(SimProfilesTest, EngineSettingsAreRefusedWhenTheEngineIsOff) {
  Serve(SimOptions());
  auto r = Post("/control", {{"kv_tokens", 1000}});
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(absl::StrContains(r.body, "--engine batching")) << r.body;
  EXPECT_TRUE(Stats()["engine"].is_null());
}

TEST_F(SimProfilesTest, TheRateLimitAnswers429BeyondItsRateAndNotBelowIt) {
  SimOptions o;
  o.rate_limit_rps = 20;
  Serve(o);
  // Below the rate (12.5/s, one at a time): every request is served.
  for (int i = 0; i < 30; ++i) {
    auto r = Post("/v1/chat/completions", Body("q", false));
    ASSERT_EQ(r.status, 200) << i;
    absl::SleepFor(absl::Milliseconds(80));
  }
  EXPECT_EQ(Stats()["rate_limit"]["limited"], 0);
  // Far above it: beyond the one-second burst, 429 with Retry-After.
  absl::SleepFor(absl::Seconds(1));  // a full bucket
  int ok = 0, limited = 0;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 60; ++i) {
    auto r = Post("/v1/chat/completions", Body("q", false));
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.retry_after, "1");
      EXPECT_EQ(json::parse(r.body)["error"]["code"], "rate_limit_exceeded");
    }
  }
  const double elapsed_s = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_EQ(ok + limited, 60);
  EXPECT_GT(limited, 0);
  EXPECT_GE(ok, 20) << "the burst";
  EXPECT_LE(ok, 20 + 20 * elapsed_s + 1) << "no more than the burst and the rate";
  EXPECT_EQ(Stats()["rate_limit"]["limited"], limited);
  // Changed while serving; 0 lifts it.
  ASSERT_EQ(Post("/control", {{"rate_limit_rps", 0}}).status, 200);
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(Post("/v1/chat/completions", Body("q", false)).status, 200);
}

// `medeval sim ARGS` started on a free port; returns its /stats.
json StatsOfCli(std::vector<std::string> args) {
  testing::TempDir tmp;
  testing::Subprocess p;
  args.insert(args.begin(), {testing::MedevalBinary(), "sim", "--port-file", tmp / "port"});
  p.Start(args, tmp.path());
  int port = 0;
  if (!testing::WaitFor([&] {
        return absl::SimpleAtoi(absl::StripAsciiWhitespace(testing::ReadText(tmp / "port")), &port);
      })) {
    ADD_FAILURE() << "medeval sim did not start: " << p.err();
    return nullptr;
  }
  auto r = HttpCall("GET", absl::StrCat("http://127.0.0.1:", port, "/stats"));
  p.Kill(SIGTERM);
  EXPECT_EQ(p.Wait(absl::Seconds(10)), 0);
  return json::parse(r.body);
}

TEST(SimProfileCliTest, ProfilesPresetSettingsThatFlagsOverride) {
  json s = StatsOfCli({"--profile", "batching", "--kv-tokens", "9000"});
  EXPECT_EQ(s["settings"]["engine"], "batching");
  EXPECT_EQ(s["settings"]["completion_tokens"], 256);
  EXPECT_EQ(s["engine"]["kv_tokens"], 9000) << "the flag wins over the preset";
  EXPECT_EQ(s["engine"]["settings"]["preempt"], true);
  s = StatsOfCli({"--profile", "batching", "--no-preempt"});
  EXPECT_EQ(s["engine"]["settings"]["preempt"], false);
  EXPECT_EQ(s["engine"]["kv_tokens"], 32768);
  s = StatsOfCli({"--profile", "queue"});
  EXPECT_EQ(s["settings"]["capacity"], 16);
  EXPECT_EQ(s["settings"]["overflow"], "queue");
  EXPECT_EQ(s["settings"]["latency_ms"], 500);
  s = StatsOfCli({"--profile", "hosted", "--latency-ms", "200"});
  EXPECT_EQ(s["rate_limit"]["rps"], 20);
  EXPECT_EQ(s["settings"]["latency_ms"], 200);
  EXPECT_EQ(s["settings"]["capacity"], 0);
  EXPECT_TRUE(s["engine"].is_null());
}

}  // namespace
}  // namespace medeval::sim
