#include "worker/batch_format.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace medeval {
namespace {

using json = nlohmann::json;

TEST(BatchFormatTest, InputLineCarriesTheBodyByteForByte) {
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"问题"}],"temperature":0})";
  const std::string line = BatchInputLine("run#3", body);
  json j = json::parse(line);
  EXPECT_EQ(j["custom_id"], "run#3");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["url"], "/v1/chat/completions");
  EXPECT_NE(line.find(std::string("\"body\":") + body + "}"), std::string::npos) << line;
}

TEST(BatchFormatTest, AnswerLineBecomesTheOnlineRecord) {
  json line = {
      {"id", "r1"},
      {"custom_id", "a"},
      {"response",
       {{"status_code", 200},
        {"body",
         {{"choices",
           {{{"message", {{"content", "<think>why</think>B"}}}, {"finish_reason", "stop"}}}},
          {"usage", {{"prompt_tokens", 7}, {"completion_tokens", 3}, {"total_tokens", 10}}}}}}},
      {"error", nullptr}};
  auto r = ParseBatchResultLine(line.dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->answered);
  EXPECT_EQ(r->record.answer(), "B");
  EXPECT_EQ(r->record.reasoning(), "why");
  EXPECT_EQ(r->record.prompt_tokens(), 7);
  EXPECT_EQ(r->record.completion_tokens(), 3);
}

TEST(BatchFormatTest, ErrorsAreNotAnswers) {
  auto http = ParseBatchResultLine(
      R"({"custom_id":"a","response":{"status_code":500,"body":{"error":{"message":"boom"}}},"error":null})");
  ASSERT_TRUE(http.ok());
  EXPECT_FALSE(http->answered);
  EXPECT_EQ(http->error, "HTTP 500: boom");
  EXPECT_FALSE(http->question_fault);
  auto bad = ParseBatchResultLine(
      R"({"custom_id":"a","response":{"status_code":400,"body":{"error":{"message":"no"}}}})");
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->question_fault);
  auto expired = ParseBatchResultLine(
      R"({"custom_id":"b","response":null,"error":{"code":"batch_expired","message":"late"}})");
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(expired->answered);
  EXPECT_EQ(expired->error, "batch_expired: late");
  auto empty = ParseBatchResultLine(
      R"({"custom_id":"c","response":{"status_code":200,"body":{"choices":[{"message":{"content":null},"finish_reason":"length"}]}}})");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->answered);
  EXPECT_TRUE(empty->question_fault);
  EXPECT_FALSE(ParseBatchResultLine("not json").ok());
  EXPECT_FALSE(ParseBatchResultLine(R"({"response":null})").ok());
  EXPECT_FALSE(ParseBatchResultLine(R"({"custom_id":"x"})").ok());
}

}  // namespace
}  // namespace medeval
