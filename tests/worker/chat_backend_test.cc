#include "worker/chat_backend.h"

#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"

namespace medeval {
namespace {

using json = nlohmann::json;

TEST(ParseChatCompletionTest, ReadsContentReasoningUsage) {
  auto c = ParseChatCompletion(R"({"choices": [{"message": {"role": "assistant", "content": "<A>",
      "reasoning_content": "thought"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->has_content);
  EXPECT_EQ(c->content, "<A>");
  EXPECT_EQ(c->reasoning_field, "thought");
  EXPECT_EQ(c->finish_reason, "stop");
  EXPECT_EQ(c->total_tokens, 5);
  auto r = ParseChatCompletion(R"({"choices": [{"message": {"content": "x", "reasoning": "r"}}]})");
  EXPECT_EQ(r->reasoning_field, "r");
}

TEST(ParseChatCompletionTest, ContentPartsAndNull) {
  auto parts = ParseChatCompletion(
      R"({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]})");
  EXPECT_EQ(parts->content, "ab");
  auto null = ParseChatCompletion(
      R"({"choices": [{"message": {"content": null}, "finish_reason": "length"}]})");
  ASSERT_TRUE(null.ok());
  EXPECT_FALSE(null->has_content);
}

TEST(ParseChatCompletionTest, RejectsBodiesItCannotUse) {
  for (const char* bad :
       {"<html>oops</html>", "[]", "{}", R"({"choices": []})",
        R"({"choices": [{"text": "legacy"}]})", R"({"choices": [{"message": {"content": 5}}]})"}) {
    EXPECT_EQ(ParseChatCompletion(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

v1::Lease MakeLease(const std::string& question) {
  v1::Lease l;
  l.set_lease_id(1);
  l.mutable_key()->set_run_id("r");
  l.set_question(question);
  return l;
}

TEST(BuildChatRequestTest, SendsTheQuestionAsGivenWithMedBenchDefaults) {
  v1::RequestParams p;
  p.set_system_prompt("You are a helpful assistant.");
  p.set_has_system_prompt(true);
  p.set_temperature(0);
  json b = json::parse(BuildChatRequest("m", p, MakeLease("问题\n原文")));
  EXPECT_EQ(b["model"], "m");
  EXPECT_EQ(b["messages"][0],
            json({{"role", "system"}, {"content", "You are a helpful assistant."}}));
  EXPECT_EQ(b["messages"][1], json({{"role", "user"}, {"content", "问题\n原文"}}));
  ASSERT_TRUE(b.contains("temperature"));
  EXPECT_EQ(b["temperature"], 0.0);
  EXPECT_FALSE(b.contains("max_tokens"));
  EXPECT_FALSE(b.contains("top_p"));
}

TEST(BuildChatRequestTest, NoSystemPromptAndExtraBody) {
  v1::RequestParams p;
  p.set_has_system_prompt(true);  // empty: no system message
  p.set_max_tokens(64);
  p.set_extra_body_json(R"({"chat_template_kwargs": {"enable_thinking": false}, "top_k": 5})");
  json b = json::parse(BuildChatRequest("m", p, MakeLease("q")));
  ASSERT_EQ(b["messages"].size(), 1u);
  EXPECT_EQ(b["max_tokens"], 64);
  EXPECT_EQ(b["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ(b["top_k"], 5);
}

TEST(BuildChatRequestTest, ImagesFollowTheTextInOrder) {
  v1::Lease l = MakeLease("看图");
  auto* a = l.add_images();
  a->set_mime_type("image/png");
  a->set_data("PNGDATA");
  auto* b = l.add_images();
  b->set_mime_type("image/jpeg");
  b->set_data("JPG");
  json body = json::parse(BuildChatRequest("m", v1::RequestParams(), l));
  const json& parts = body["messages"][0]["content"];
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0]["type"], "text");
  EXPECT_EQ(parts[1]["image_url"]["url"],
            absl::StrCat("data:image/png;base64,", absl::Base64Escape("PNGDATA")));
  EXPECT_EQ(parts[2]["image_url"]["url"],
            absl::StrCat("data:image/jpeg;base64,", absl::Base64Escape("JPG")));
}

TEST(ServerErrorMessageTest, CommonShapes) {
  EXPECT_EQ(ServerErrorMessage(R"({"error": {"message": "bad key"}})"), "bad key");
  EXPECT_EQ(ServerErrorMessage(R"({"error": "overloaded"})"), "overloaded");
  EXPECT_EQ(ServerErrorMessage(R"({"detail": "Not Found"})"), "Not Found");
  EXPECT_EQ(ServerErrorMessage("upstream connect error"), "upstream connect error");
}

TEST(ServerErrorMessageTest, AnHtmlErrorPageIsOneLine) {
  EXPECT_EQ(ServerErrorMessage("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"
                               "<style>body{}</style></head>\n<body><h1>502 Bad Gateway</h1>"
                               "<hr><center>nginx</center></body></html>\n"),
            "HTML page: 502 Bad Gateway");
  EXPECT_EQ(ServerErrorMessage("<html>\n<body>\n<h1>Service Unavailable</h1>\n<p>Try later"
                               "</p></body></html>"),
            "HTML page: Service Unavailable");
}

// The backend against a real simulated server.
class ChatBackendTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    server_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
  }
  AskOutcome Ask(const std::string& question, v1::RequestParams params,
                 const std::string& key = "") {
    BackendConfig cfg;
    cfg.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", server_->port(), "/v1"));
    cfg.api_key = key;
    cfg.worker_name = "w1";
    cfg.retry_base = absl::Milliseconds(2);
    ChatBackend backend(&http_, cfg);
    v1::RunInfo run;
    run.set_run_id("r");
    run.set_model("m1");
    *run.mutable_params() = params;
    std::promise<AskOutcome> p;
    backend.Ask(run, MakeLease(question), [&p](AskOutcome o) { p.set_value(std::move(o)); });
    return p.get_future().get();
  }
  static v1::RequestParams Params(int attempts = 6) {
    v1::RequestParams p;
    p.set_temperature(0);
    p.set_max_attempts(attempts);
    p.set_timeout_s(5);
    return p;
  }
  HttpClient http_{HttpClient::Options{8, absl::Seconds(5)}};
  std::unique_ptr<sim::SimServer> server_;
};

TEST_F(ChatBackendTest, RecordsTheAnswerAndStripsThinking) {
  sim::SimOptions o;
  o.style.think = true;
  Serve(o);
  AskOutcome out = Ask("解释：耐药性", Params());
  ASSERT_EQ(out.kind, AskOutcome::kAnswered) << out.error;
  sim::SimAnswer want = sim::AnswerQuestion("m1", "解释：耐药性", o.style);
  EXPECT_EQ(out.record.raw_text(), want.content);
  EXPECT_FALSE(absl::StrContains(out.record.answer(), "think"));
  EXPECT_FALSE(out.record.reasoning().empty());
  EXPECT_EQ(out.record.attempts(), 1);
  EXPECT_EQ(out.record.worker(), "w1");
  EXPECT_EQ(out.record.finish_reason(), "stop");
  EXPECT_GT(out.record.total_tokens(), 0);
}

TEST_F(ChatBackendTest, RetriesTransientFailuresUntilAnswered) {
  sim::SimOptions o;
  o.fail_rate = 0.3;
  o.garbage_rate = 0.2;
  o.drop_rate = 0.1;
  Serve(o);
  int retried = 0;
  for (int i = 0; i < 20; ++i) {
    AskOutcome out = Ask(absl::StrCat("q", i), Params(30));
    ASSERT_EQ(out.kind, AskOutcome::kAnswered) << out.record.last_error();
    if (out.record.attempts() > 1) {
      ++retried;
      EXPECT_FALSE(out.record.last_error().empty());
    }
  }
  EXPECT_GT(retried, 0);
}

TEST_F(ChatBackendTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  sim::SimOptions o;
  o.fail_rate = 1.0;
  Serve(o);
  AskOutcome out = Ask("q", Params(3));
  ASSERT_EQ(out.kind, AskOutcome::kFailed);
  EXPECT_EQ(out.record.attempts(), 3);
  EXPECT_TRUE(absl::StrContains(out.record.last_error(), "HTTP 500: simulated server error"))
      << out.record.last_error();
  EXPECT_TRUE(absl::StrContains(out.record.last_error(), "gave up after 3 attempts"));
}

TEST_F(ChatBackendTest, ALeaseWithoutItsImageBytesIsRefusedNotSent) {
  Serve(sim::SimOptions());
  BackendConfig cfg;
  cfg.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", server_->port(), "/v1"));
  cfg.worker_name = "w1";
  ChatBackend backend(&http_, cfg);
  v1::RunInfo run;
  run.set_run_id("r");
  run.set_model("m1");
  *run.mutable_params() = Params();
  v1::Lease lease = MakeLease("看图");
  v1::ImagePart* part = lease.add_images();
  part->set_path("img/a.png");
  part->set_mime_type("image/png");  // no bytes
  std::promise<AskOutcome> p;
  backend.Ask(run, lease, [&p](AskOutcome o) { p.set_value(std::move(o)); });
  AskOutcome out = p.get_future().get();
  EXPECT_EQ(out.kind, AskOutcome::kFailed);
  EXPECT_TRUE(absl::StrContains(out.record.last_error(), "no bytes for image img/a.png"))
      << out.record.last_error();
  EXPECT_EQ(nlohmann::json::parse(server_->StatsJson())["requests"], 0);
}

TEST_F(ChatBackendTest, BadRequestFailsTheQuestionAtOnce) {
  Serve(sim::SimOptions());
  v1::RequestParams p = Params();
  p.set_max_tokens(-1);  // the server refuses it
  AskOutcome out = Ask("q", p);
  ASSERT_EQ(out.kind, AskOutcome::kFailed);
  EXPECT_EQ(out.record.attempts(), 1);
  EXPECT_TRUE(absl::StartsWith(out.record.last_error(), "HTTP 400: ")) << out.record.last_error();
}

TEST_F(ChatBackendTest, RefusedKeyStopsTheBackendAndNeverShowsTheKey) {
  sim::SimOptions o;
  o.api_key = "right-key";
  Serve(o);
  AskOutcome out = Ask("q", Params(), "wrong-key-12345");
  ASSERT_EQ(out.kind, AskOutcome::kBackend);
  EXPECT_TRUE(absl::StartsWith(out.error, "HTTP 401")) << out.error;
  EXPECT_FALSE(absl::StrContains(out.error, "wrong-key-12345"));
  EXPECT_EQ(Ask("q", Params(), "right-key").kind, AskOutcome::kAnswered);
}

TEST_F(ChatBackendTest, TimesOutAHungRequestAndRetries) {
  sim::SimOptions o;
  o.hang_rate = 1.0;
  Serve(o);
  v1::RequestParams p = Params(2);
  p.set_timeout_s(0.2);
  // Every attempt timing out with nothing answered meanwhile is the endpoint
  // down, not the question: it goes back unspent instead of failing.
  AskOutcome out = Ask("q", p);
  ASSERT_EQ(out.kind, AskOutcome::kHandBack);
  EXPECT_TRUE(absl::StrContains(out.error, "timeout")) << out.error;
}

TEST_F(ChatBackendTest, NotFoundExplainsTheUrl) {
  Serve(sim::SimOptions());
  BackendConfig cfg;
  cfg.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", server_->port(), "/wrong"));
  ChatBackend backend(&http_, cfg);
  v1::RunInfo run;
  run.set_model("m");
  std::promise<AskOutcome> p;
  backend.Ask(run, MakeLease("q"), [&p](AskOutcome o) { p.set_value(std::move(o)); });
  AskOutcome out = p.get_future().get();
  ASSERT_EQ(out.kind, AskOutcome::kBackend);
  EXPECT_TRUE(absl::StrContains(out.error, "ending in /v1")) << out.error;
}

}  // namespace
}  // namespace medeval
