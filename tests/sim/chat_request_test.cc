#include "sim/chat_request.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval::sim {
namespace {

std::string DataUrl(const std::string& mime, const std::string& bytes) {
  return "data:" + mime + ";base64," + absl::Base64Escape(bytes);
}

TEST(ChatRequestTest, TakesTheLastUserMessageAndTheSettings) {
  auto r = ParseChatRequest(R"({"model": "m", "stream": true,
      "stream_options": {"include_usage": true}, "max_completion_tokens": 64, "temperature": 0,
      "messages": [{"role": "system", "content": "你是助手"},
                   {"role": "user", "content": "first"},
                   {"role": "assistant", "content": null},
                   {"role": "user", "content": [{"type": "text", "text": "问题"},
                                                {"type": "text", "text": "A. 是"}]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->question, "问题\nA. 是");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->max_tokens, 64);
  EXPECT_EQ(r->prompt_chars, 4u + 5u + 7u);  // code points, not bytes
}

TEST(ChatRequestTest, CountsImagesThatDecodeAndThoseThatDoNot) {
  testing::TempDir tmp;
  testing::WriteImage(tmp / "a.png", "png", 4, 3);
  const std::string png = testing::ReadText(tmp / "a.png");
  EXPECT_TRUE(ValidImageDataUrl(DataUrl("image/png", png)));
  EXPECT_FALSE(ValidImageDataUrl(DataUrl("image/jpeg", png))) << "claims another type";
  EXPECT_FALSE(ValidImageDataUrl(DataUrl("image/png", png.substr(0, 12)))) << "truncated";
  EXPECT_FALSE(ValidImageDataUrl(DataUrl("application/pdf", testing::MakePdf(1))));
  EXPECT_FALSE(ValidImageDataUrl("data:image/png;base64,***"));
  EXPECT_FALSE(ValidImageDataUrl("https://example.com/a.png"));

  const std::string body = R"({"model": "m", "messages": [{"role": "user", "content": [
      {"type": "image_url", "image_url": {"url": ")" +
                           DataUrl("image/png", png) + R"("}},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
      {"type": "text", "text": "看图"}]}]})";
  auto r = ParseChatRequest(body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->images_ok, 1);
  EXPECT_EQ(r->images_bad, 1);
  EXPECT_EQ(r->question, "看图");
}

TEST(ChatRequestTest, MalformedRequestsSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"messages": [{"role": "user", "content": "q"}]})", "'model'"},
      {R"({"model": "m", "messages": []})", "'messages'"},
      {R"({"model": "m", "messages": [{"role": "system", "content": "s"}]})", "no user message"},
      {R"({"model": "m", "messages": [{"content": "q"}]})", "'role'"},
      {R"({"model": "m", "messages": [{"role": "user", "content": 5}]})", "'content'"},
      {R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]})",
       "unsupported content part type 'audio'"},
      {R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "image_url.url"},
      {R"({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "q"}]})",
       "'stream'"},
      {R"({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "q"}]})",
       "'max_tokens' must be a positive integer"},
      {R"({"model": "m", "temperature": 3, "messages": [{"role": "user", "content": "q"}]})",
       "'temperature'"},
  };
  for (const auto& [body, want] : cases) {
    auto r = ParseChatRequest(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_TRUE(absl::StrContains(r.status().message(), want)) << body << ": " << r.status();
  }
}

}  // namespace
}  // namespace medeval::sim
