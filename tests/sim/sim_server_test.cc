#include "sim/sim_server.h"

#include <atomic>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"
#include "worker/http_client.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;
using testing::HttpCall;

class SimServerTest : public ::testing::Test {
 protected:
  void Serve(SimOptions o) {
    server_ = std::make_unique<SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  testing::SimpleResponse Chat(const json& body, std::vector<std::string> headers = {},
                               absl::Duration timeout = absl::Seconds(10)) {
    headers.push_back("Content-Type: application/json");
    return HttpCall("POST", base_ + "/v1/chat/completions", body.dump(), headers, timeout);
  }
  static json Body(const std::string& question, bool stream = false) {
    json b = {{"model", "m1"},
              {"messages",
               {{{"role", "system"}, {"content", "You are a helpful assistant."}},
                {{"role", "user"}, {"content", question}}}},
              {"temperature", 0}};
    if (stream) b["stream"] = true;
    return b;
  }
  json Stats() { return json::parse(server_->StatsJson()); }

  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(SimServerTest, ChatCompletionConformsToTheOpenAiShape) {
  Serve(SimOptions());
  auto r = Chat(Body("解释：心房颤动"));
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_TRUE(j["id"].is_string());
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "m1");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  for (const char* k : {"prompt_tokens", "completion_tokens", "total_tokens"}) {
    EXPECT_TRUE(j["usage"][k].is_number_integer()) << k;
  }
  EXPECT_EQ(j["choices"][0]["message"]["content"],
            AnswerQuestion("m1", "解释：心房颤动", AnswerStyle()).content);
}

TEST_F(SimServerTest, StreamingSendsServerSentEventsEndingInDone) {
  SimOptions o;
  o.style.reasoning_field = true;
  Serve(o);
  json body = Body("解释：糖化血红蛋白", true);
  body["stream_options"] = {{"include_usage", true}};
  auto r = Chat(body);
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> events = absl::StrSplit(r.body, "\n\n", absl::SkipEmpty());
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "data: [DONE]");
  std::string content, reasoning, finish;
  bool usage = false;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_TRUE(absl::StartsWith(events[i], "data: ")) << events[i];
    json c = json::parse(events[i].substr(6));
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"].empty()) {
      usage = c["usage"]["total_tokens"].is_number_integer();
      continue;
    }
    const json& d = c["choices"][0]["delta"];
    if (d.contains("content")) content += d["content"].get<std::string>();
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (c["choices"][0]["finish_reason"].is_string()) finish = c["choices"][0]["finish_reason"];
  }
  SimAnswer want = AnswerQuestion("m1", "解释：糖化血红蛋白", o.style);
  EXPECT_EQ(content, want.content);
  EXPECT_EQ(reasoning, want.reasoning_content);
  EXPECT_EQ(finish, "stop");
  EXPECT_TRUE(usage);
}

TEST_F(SimServerTest, InfoEndpoints) {
  SimOptions o;
  o.model_name = "listed-model";
  Serve(o);
  auto h = HttpCall("GET", base_ + "/health");
  EXPECT_EQ(h.status, 200);
  auto m = HttpCall("GET", base_ + "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(json::parse(m.body)["data"][0]["id"], "listed-model");
  auto s = HttpCall("GET", base_ + "/stats");
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(json::parse(s.body)["requests"], 0);
}

TEST_F(SimServerTest, MalformedRequestsGet400WithAnOpenAiErrorBody) {
  Serve(SimOptions());
  for (
      const std::string& bad :
      {std::string("{not json"), std::string("[]"), std::string(R"({"model": "m"})"),
       std::string(R"({"model": "m", "messages": []})"),
       std::string(R"({"model": "m", "messages": [{"role": "user", "content": 5}]})"),
       std::string(R"({"messages": [{"role": "user", "content": "q"}]})"),
       std::string(
           R"({"model": "m", "messages": [{"role": "user", "content": "q"}], "max_tokens": -1})")}) {
    auto r = HttpCall("POST", base_ + "/v1/chat/completions", bad);
    ASSERT_EQ(r.status, 400) << bad;
    json e = json::parse(r.body);
    EXPECT_TRUE(e["error"]["message"].is_string()) << bad;
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  }
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/chat/completions").status, 405);
  EXPECT_EQ(HttpCall("GET", base_ + "/nowhere").status, 404);
  EXPECT_EQ(Stats()["bad_requests"], 7);
  // Still serving.
  EXPECT_EQ(Chat(Body("q")).status, 200);
}

TEST_F(SimServerTest, RequiresTheApiKeyWhenSet) {
  SimOptions o;
  o.api_key = "sekret";
  Serve(o);
  EXPECT_EQ(Chat(Body("q")).status, 401);
  EXPECT_EQ(Chat(Body("q"), {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Chat(Body("q"), {"Authorization: Bearer sekret"}).status, 200);
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/models").status, 401);
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/models", "", {"Authorization: Bearer sekret"}).status,
            200);
  EXPECT_EQ(HttpCall("GET", base_ + "/health").status, 200);  // probes need no key
  EXPECT_EQ(Stats()["unauthorized"], 3);
}

TEST_F(SimServerTest, RateLimitFaultSends429WithRetryAfter) {
  SimOptions o;
  o.ratelimit_rate = 1.0;
  o.retry_after_s = 7;
  Serve(o);
  auto r = Chat(Body("q"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.retry_after, "7");
  EXPECT_EQ(Stats()["faults"]["ratelimit"], 1);
}

TEST_F(SimServerTest, ServerErrorFault) {
  SimOptions o;
  o.fail_rate = 1.0;
  Serve(o);
  EXPECT_EQ(Chat(Body("q")).status, 500);
  EXPECT_EQ(Stats()["faults"]["server_error"], 1);
}

TEST_F(SimServerTest, DropFaultResetsTheConnection) {
  SimOptions o;
  o.drop_rate = 1.0;
  Serve(o);
  auto r = Chat(Body("q"));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(Stats()["faults"]["drop"], 1);
}

TEST_F(SimServerTest, GarbageFaultSendsAMalformedBody) {
  SimOptions o;
  o.garbage_rate = 1.0;
  Serve(o);
  auto r = Chat(Body("q"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body, nullptr, false).is_discarded());
  EXPECT_EQ(Stats()["faults"]["garbage"], 1);
}

TEST_F(SimServerTest, HangFaultNeverAnswers) {
  SimOptions o;
  o.hang_rate = 1.0;
  Serve(o);
  auto r = Chat(Body("q"), {}, absl::Milliseconds(300));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(Stats()["faults"]["hang"], 1);
}

// Fires `n` requests at once; returns their statuses.
std::vector<int> Burst(const std::string& url, int n, const std::string& body) {
  HttpClient http(HttpClient::Options{n, absl::Seconds(10)});
  std::mutex mu;
  std::vector<int> statuses;
  std::promise<void> all;
  std::atomic<int> left{n};
  for (int i = 0; i < n; ++i) {
    HttpRequest req;
    req.url = url;
    req.body = body;
    http.Send(req, [&](HttpResponse r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        statuses.push_back(r.status);
      }
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  return statuses;
}

TEST_F(SimServerTest, CapacityQueuesTheOverflow) {
  SimOptions o;
  o.capacity = 4;
  o.latency_ms = 50;
  Serve(o);
  auto statuses = Burst(base_ + "/v1/chat/completions", 16, Body("q").dump());
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 16);
  EXPECT_EQ(Stats()["max_concurrency"], 4);
}

TEST_F(SimServerTest, CapacityRejectsTheOverflowWith429) {
  SimOptions o;
  o.capacity = 2;
  o.latency_ms = 300;
  o.overflow_reject = true;
  Serve(o);
  auto statuses = Burst(base_ + "/v1/chat/completions", 8, Body("q").dump());
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 2);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 429), 6);
  json s = Stats();
  EXPECT_EQ(s["max_concurrency"], 2);
  EXPECT_EQ(s["faults"]["capacity_rejected"], 6);
}

TEST_F(SimServerTest, CountsRequestsPerQuestionAndKeepsConnectionsAlive) {
  Serve(SimOptions());
  HttpClient http(HttpClient::Options{1, absl::Seconds(5)});
  for (int i = 0; i < 20; ++i) {
    std::promise<int> p;
    HttpRequest req;
    req.url = base_ + "/v1/chat/completions";
    req.body = Body(i < 10 ? "same" : absl::StrCat("q", i)).dump();
    http.Send(req, [&p](HttpResponse r) { p.set_value(r.status); });
    ASSERT_EQ(p.get_future().get(), 200);
  }
  json s = Stats();
  EXPECT_EQ(s["connections"], 1);
  EXPECT_EQ(s["questions"], 11);
  EXPECT_EQ(s["questions_asked_more_than_once"], 1);
  EXPECT_EQ(s["per_question"][QuestionKey("same")]["requests"], 10);
  EXPECT_EQ(s["per_question"][QuestionKey("same")]["answered"], 10);
}

TEST_F(SimServerTest, MaxTokensTruncatesWithFinishReasonLength) {
  Serve(SimOptions());
  json b = Body("解释：抗菌药物耐药性");
  b["max_tokens"] = 5;
  auto r = Chat(b);
  ASSERT_EQ(r.status, 200);
  json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
}

TEST_F(SimServerTest, ControlChangesFaultsWhileServing) {
  Serve(SimOptions());
  EXPECT_EQ(Chat(Body("q")).status, 200);
  auto r = HttpCall("POST", base_ + "/control", R"({"ratelimit_rate": 1, "retry_after_s": 9})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto limited = Chat(Body("q"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.retry_after, "9");
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"ratelimit_rate": 0})").status, 200);
  EXPECT_EQ(Chat(Body("q")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"fail_rate": 2})").status, 400);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"nonsense": 1})").status, 400);
}

}  // namespace
}  // namespace medeval::sim
