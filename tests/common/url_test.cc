#include "common/url.h"

#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(ParseEndpointTest, AcceptsBaseOrFullUrl) {
  for (const char* url : {"http://host:8000/v1", "http://host:8000/v1/",
                          "http://host:8000/v1/chat/completions", " http://host:8000/v1 "}) {
    auto ep = ParseEndpoint(url);
    ASSERT_TRUE(ep.ok()) << url;
    EXPECT_EQ(ep->base, "http://host:8000/v1") << url;
    EXPECT_EQ(ep->chat_completions, "http://host:8000/v1/chat/completions") << url;
    EXPECT_EQ(ep->models, "http://host:8000/v1/models") << url;
  }
}

TEST(ParseEndpointTest, KeepsQueryStrings) {
  auto ep = ParseEndpoint("https://x.example/openai/v1?api-version=2024-06-01");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->chat_completions,
            "https://x.example/openai/v1/chat/completions?api-version=2024-06-01");
}

TEST(ParseEndpointTest, RejectsWhatIsNotAnHttpUrl) {
  EXPECT_EQ(ParseEndpoint("localhost:8000").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseEndpoint("ftp://x/v1").ok());
  EXPECT_FALSE(ParseEndpoint("http:///v1").ok());
  EXPECT_FALSE(ParseEndpoint("http://h/v1#frag").ok());
}

TEST(RedactUrlTest, RemovesCredentials) {
  EXPECT_EQ(RedactUrl("https://user:secret@host/v1"), "https://host/v1");
  EXPECT_EQ(RedactUrl("https://host/v1?api_key=sk123&x=1"), "https://host/v1?api_key=REDACTED&x=1");
  EXPECT_EQ(RedactUrl("http://host:8000/v1"), "http://host:8000/v1");
}

}  // namespace
}  // namespace medeval
