// What the backend makes of 200 responses that are not plain answers: empty
// or white-space content, reasoning only, a think block only, invalid UTF-8,
// bodies over the size limit or not matching their Content-Encoding, and a
// served model other than the one asked for. Against a real simulated
// server.
#include <algorithm>
#include <functional>
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "worker/chat_backend.h"

namespace medeval {
namespace {

using sim::ContentFault;

v1::Lease MakeLease(const std::string& question) {
  v1::Lease l;
  l.set_lease_id(1);
  l.mutable_key()->set_run_id("r");
  l.set_question(question);
  return l;
}

TEST(EmptyAnswerReasonTest, TellsAnswersFromNonAnswers) {
  ChatCompletion c;
  c.has_content = true;
  c.content = "A";
  EXPECT_EQ(EmptyAnswerReason(c, "A"), "");
  c.content = "";
  EXPECT_TRUE(absl::StrContains(EmptyAnswerReason(c, ""), "content is empty"));
  c.content = " \u3000\u00a0\n\u200b";
  EXPECT_TRUE(absl::StrContains(EmptyAnswerReason(c, c.content), "only white space"));
  c.content = "<think>A</think>\n";
  EXPECT_TRUE(absl::StrContains(EmptyAnswerReason(c, ""), "only a <think> block"));
  c.has_content = false;
  c.content.clear();
  c.reasoning_field = "答案是 A";
  c.reasoning_key = "reasoning_content";
  std::string why = EmptyAnswerReason(c, "");
  EXPECT_TRUE(absl::StartsWith(why, "empty answer: ")) << why;
  EXPECT_TRUE(absl::StrContains(why, "content is null")) << why;
  EXPECT_TRUE(absl::StrContains(why, "only in the 'reasoning_content' field")) << why;
}

TEST(ParseChatCompletionTest, InvalidUtf8IsReplacedNotRefused) {
  auto c = ParseChatCompletion(
      "{\"model\": \"m\", \"id\": \"x1\", \"system_fingerprint\": \"fp\", \"choices\": "
      "[{\"message\": {\"content\": \"\xE4\xB8<A>\"}}]}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->content, "\uFFFD\uFFFD<A>");
  EXPECT_EQ(c->invalid_utf8, 2u);
  EXPECT_EQ(c->model, "m");
  EXPECT_EQ(c->id, "x1");
  EXPECT_EQ(c->system_fingerprint, "fp");
}

class BackendAnswersTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    server_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
  }
  AskOutcome Ask(const std::string& question, int attempts = 3,
                 const std::function<void(BackendConfig*)>& adjust = nullptr) {
    BackendConfig cfg;
    cfg.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", server_->port(), "/v1"));
    cfg.worker_name = "w1";
    cfg.retry_base = absl::Milliseconds(2);
    if (adjust) adjust(&cfg);
    ChatBackend backend(&http_, cfg);
    v1::RunInfo run;
    run.set_run_id("r");
    run.set_model("m1");
    run.mutable_params()->set_temperature(0);
    run.mutable_params()->set_max_attempts(attempts);
    run.mutable_params()->set_timeout_s(20);
    std::promise<AskOutcome> p;
    backend.Ask(run, MakeLease(question), [&p](AskOutcome o) { p.set_value(std::move(o)); });
    return p.get_future().get();
  }
  static sim::SimOptions Faulty(ContentFault f, double rate = 1.0) {
    sim::SimOptions o;
    o.responses.rates[static_cast<size_t>(f)] = rate;
    return o;
  }

  HttpClient http_{HttpClient::Options{8, absl::Seconds(5)}};
  std::unique_ptr<sim::SimServer> server_;
};

TEST_F(BackendAnswersTest, ResponsesWithoutAnAnswerFailAfterTheirAttempts) {
  const std::pair<ContentFault, const char*> cases[] = {
      {ContentFault::kEmpty, "content is empty"},
      {ContentFault::kWhitespace, "only white space"},
      {ContentFault::kReasoningOnly, "only in the 'reasoning_content' field"},
      {ContentFault::kThinkOnly, "only a <think> block"},
  };
  for (const auto& [fault, words] : cases) {
    Serve(Faulty(fault));
    AskOutcome out = Ask("问题：请回答。", 3);
    ASSERT_EQ(out.kind, AskOutcome::kFailed) << sim::ContentFaultName(fault);
    EXPECT_EQ(out.record.attempts(), 3) << sim::ContentFaultName(fault);
    EXPECT_TRUE(absl::StartsWith(out.record.last_error(), "empty answer: "))
        << out.record.last_error();
    EXPECT_TRUE(absl::StrContains(out.record.last_error(), words)) << out.record.last_error();
    EXPECT_TRUE(out.record.answer().empty());
  }
}

TEST_F(BackendAnswersTest, EmptyAnswersAreRetriedUntilARealOne) {
  Serve(Faulty(ContentFault::kWhitespace, 0.5));
  int retried = 0;
  for (int i = 0; i < 20; ++i) {
    AskOutcome out = Ask(absl::StrCat("问题 ", i), 30);
    ASSERT_EQ(out.kind, AskOutcome::kAnswered) << out.record.last_error();
    EXPECT_EQ(out.record.answer(), sim::AnswerQuestion("m1", absl::StrCat("问题 ", i), {}).content);
    if (out.record.attempts() > 1) {
      ++retried;
      EXPECT_TRUE(absl::StrContains(out.record.last_error(), "empty answer"));
    }
  }
  EXPECT_GT(retried, 0);
}

TEST_F(BackendAnswersTest, RecordsWhatTheServerSaysItServed) {
  sim::SimOptions o;
  o.responses.served_model = "another-model";
  Serve(o);
  AskOutcome out = Ask("q");
  ASSERT_EQ(out.kind, AskOutcome::kAnswered) << out.record.last_error();
  EXPECT_EQ(out.record.requested_model(), "m1");
  EXPECT_EQ(out.record.served_model(), "another-model");
  EXPECT_EQ(out.record.system_fingerprint(), "fp_medeval_sim");
  EXPECT_TRUE(absl::StartsWith(out.record.request_id(), "req-sim-")) << out.record.request_id();
}

TEST_F(BackendAnswersTest, InvalidUtf8IsKeptAndFlagged) {
  Serve(Faulty(ContentFault::kInvalidUtf8));
  AskOutcome out = Ask("q", 1);
  ASSERT_EQ(out.kind, AskOutcome::kAnswered) << out.record.last_error();
  EXPECT_EQ(out.record.answer(),
            // One U+FFFD per bad byte: the sim sends E4 B8 FF.
            absl::StrCat("\uFFFD\uFFFD\uFFFD", sim::AnswerQuestion("m1", "q", {}).content));
  EXPECT_NE(std::find(out.record.flags().begin(), out.record.flags().end(), "invalid_utf8"),
            out.record.flags().end());
}

TEST_F(BackendAnswersTest, ABodyOverTheLimitFailsTheAttemptSayingSo) {
  sim::SimOptions o = Faulty(ContentFault::kHuge);
  o.responses.huge_bytes = 2 << 20;
  Serve(o);
  AskOutcome out = Ask("q", 2, [](BackendConfig* c) { c->max_response_bytes = 1 << 20; });
  ASSERT_EQ(out.kind, AskOutcome::kFailed);
  EXPECT_EQ(out.record.attempts(), 2);
  EXPECT_TRUE(absl::StrContains(out.record.last_error(), "response too large"))
      << out.record.last_error();
  // Under the limit the same body is read.
  EXPECT_EQ(Ask("q", 1).kind, AskOutcome::kAnswered);
}

TEST_F(BackendAnswersTest, GzipIsReadButItsExpandedSizeCounts) {
  sim::SimOptions o;
  o.responses.gzip = true;
  Serve(o);
  AskOutcome plain = Ask("q", 1);
  ASSERT_EQ(plain.kind, AskOutcome::kAnswered) << plain.record.last_error();
  EXPECT_EQ(plain.record.answer(), sim::AnswerQuestion("m1", "q", {}).content);
  // 32 MiB of padding compresses to a small body; the default 16 MiB limit
  // applies to what it expands to.
  o.responses.rates[static_cast<size_t>(ContentFault::kHuge)] = 1;
  Serve(o);
  AskOutcome bomb = Ask("q", 1);
  ASSERT_EQ(bomb.kind, AskOutcome::kFailed);
  EXPECT_TRUE(absl::StrContains(bomb.record.last_error(), "once decompressed"))
      << bomb.record.last_error();
}

TEST_F(BackendAnswersTest, AContentEncodingMismatchIsNamedNotAConnectionError) {
  sim::SimOptions o;
  o.responses.bad_gzip_rate = 1;
  Serve(o);
  AskOutcome out = Ask("q", 2);
  ASSERT_EQ(out.kind, AskOutcome::kFailed);
  EXPECT_TRUE(absl::StrContains(out.record.last_error(), "Content-Encoding 'gzip'"))
      << out.record.last_error();
  EXPECT_FALSE(absl::StrContains(out.record.last_error(), "connection error"))
      << out.record.last_error();
}

TEST_F(BackendAnswersTest, WorkerHeadersAreSentAndTheirSecretsScrubbed) {
  sim::SimOptions o;
  o.api_key = "header-secret-123";
  Serve(o);
  AskOutcome out = Ask("q", 1, [](BackendConfig* c) {
    c->headers.emplace_back("Authorization", "Bearer header-secret-123");
  });
  EXPECT_EQ(out.kind, AskOutcome::kAnswered) << out.error;
}

}  // namespace
}  // namespace medeval
