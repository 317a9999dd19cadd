#include "common/http_headers.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(HttpHeadersTest, CredentialNames) {
  for (const char* name : {"Authorization", "authorization", "api-key", "X-API-KEY", "X-Auth-Token",
                           "Proxy-Authorization", "X-Gateway-Secret", "Cookie", "OpenAI-Token"}) {
    EXPECT_TRUE(IsCredentialHeader(name)) << name;
  }
  for (const char* name : {"X-Team", "Content-Type", "OpenAI-Organization", "User-Agent"}) {
    EXPECT_FALSE(IsCredentialHeader(name)) << name;
  }
}

TEST(HttpHeadersTest, ParsesAndRefusesWithoutEchoingTheValue) {
  auto h = ParseHeaderLine("  X-Team :  eval ", "--header");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->first, "X-Team");
  EXPECT_EQ(h->second, "eval");
  auto no_colon = ParseHeaderLine("Authorization Bearer sk-12345", "--header");
  EXPECT_EQ(no_colon.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(no_colon.status().message(), "sk-12345"));
  EXPECT_FALSE(ParseHeaderLine("X-A: b\r\nX-Injected: c", "--header").ok());
  EXPECT_FALSE(ParseHeaderLine("Bad Name: v", "--header").ok());
  EXPECT_FALSE(ParseHeaderLine(": v", "--header").ok());
}

}  // namespace
}  // namespace medeval
