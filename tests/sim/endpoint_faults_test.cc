// The simulated server's whole-endpoint faults: an outage (connection
// refused, then back on the same port), a plain web server's HTML 404, a
// proxy's 502/503, a key revoked after N answers, and a redirect.
#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"
#include "worker/http_client.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;
using testing::HttpCall;

class EndpointFaultsTest : public ::testing::Test {
 protected:
  void Serve(SimOptions o) {
    server_ = std::make_unique<SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  static std::string Body(const std::string& q) {
    return json{{"model", "m"}, {"messages", {{{"role", "user"}, {"content", q}}}}}.dump();
  }
  // One request through `http` (keeps its connection alive between calls).
  static HttpResponse Call(HttpClient& http, const std::string& method, const std::string& url,
                           const std::string& body = "") {
    HttpRequest req;
    req.method = method;
    req.url = url;
    req.body = body;
    req.headers = {"Content-Type: application/json"};
    req.timeout = absl::Seconds(5);
    std::promise<HttpResponse> p;
    http.Send(req, [&p](HttpResponse r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  json Stats() { return json::parse(server_->StatsJson()); }

  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(EndpointFaultsTest, AnOutageRefusesConnectionsThenServesAgainOnTheSamePort) {
  Serve(SimOptions());
  HttpClient http(HttpClient::Options{1, absl::Seconds(2)});
  ASSERT_EQ(Call(http, "POST", base_ + "/v1/chat/completions", Body("q1")).status, 200);
  server_->GoDown(absl::Milliseconds(800));
  // The kept-alive connection is reset and a new one refused.
  HttpResponse down = Call(http, "POST", base_ + "/v1/chat/completions", Body("q2"));
  EXPECT_EQ(down.status, 0);
  EXPECT_FALSE(down.error.empty());
  auto fresh = HttpCall("GET", base_ + "/v1/models");
  EXPECT_EQ(fresh.status, 0);
  EXPECT_TRUE(absl::StrContains(fresh.error, "connect")) << fresh.error;
  EXPECT_TRUE(Stats()["down"].get<bool>());
  ASSERT_TRUE(testing::WaitFor([&] { return HttpCall("GET", base_ + "/v1/models").status == 200; },
                               absl::Seconds(5)));
  EXPECT_EQ(Call(http, "POST", base_ + "/v1/chat/completions", Body("q3")).status, 200);
  EXPECT_EQ(Stats()["down_episodes"], 1);
}

TEST_F(EndpointFaultsTest, DownAfterNAnswersAndThroughControl) {
  SimOptions o;
  o.down_after = 2;
  o.down_for = absl::Milliseconds(500);
  Serve(o);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("a")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("b")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("c")).status, 0);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return HttpCall("POST", base_ + "/v1/chat/completions", Body("d")).status == 200; },
      absl::Seconds(5)));
  // Only once: later answers keep it up.
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("e")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"down_s": 0.3})").status, 200);
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/models").status, 0);
  EXPECT_EQ(server_->Control(R"({"down_s": -1})"), "'down_s' must be a number of seconds > 0");
}

TEST_F(EndpointFaultsTest, HtmlNotFoundLikeAPlainWebServer) {
  SimOptions o;
  o.endpoint_faults.html_404 = true;
  Serve(o);
  HttpClient http(HttpClient::Options{1, absl::Seconds(2)});
  HttpResponse m = Call(http, "GET", base_ + "/v1/models");
  EXPECT_EQ(m.status, 404);
  EXPECT_TRUE(absl::StartsWith(m.content_type, "text/html")) << m.content_type;
  EXPECT_TRUE(absl::StrContains(m.body, "<title>404 Not Found</title>")) << m.body;
  EXPECT_EQ(Call(http, "POST", base_ + "/v1/chat/completions", Body("q")).status, 404);
  EXPECT_EQ(Stats()["endpoint_faults"]["html_404"], 2);
  EXPECT_EQ(Stats()["completed"], 0);
}

TEST_F(EndpointFaultsTest, ProxyErrorsComeAndGo) {
  Serve(SimOptions());
  EXPECT_EQ(server_->Control(R"({"proxy_status": 502})"), "");
  auto r = HttpCall("POST", base_ + "/v1/chat/completions", Body("q"));
  EXPECT_EQ(r.status, 502);
  EXPECT_TRUE(absl::StrContains(r.body, "502 Bad Gateway")) << r.body;
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/models").status, 502);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"proxy_status": 503})").status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("q")).status, 503);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"proxy_status": 0})").status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("q")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/control", R"({"proxy_status": 500})").status, 400);
}

TEST_F(EndpointFaultsTest, UnauthorizedAfterNAnswers) {
  SimOptions o;
  o.endpoint_faults.unauthorized_after = 2;
  Serve(o);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("a")).status, 200);
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("b")).status, 200);
  auto r = HttpCall("POST", base_ + "/v1/chat/completions", Body("c"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(HttpCall("GET", base_ + "/v1/models").status, 401);
  EXPECT_EQ(server_->Control(R"({"unauthorized_after": -1})"), "");
  EXPECT_EQ(HttpCall("POST", base_ + "/v1/chat/completions", Body("c")).status, 200);
}

TEST_F(EndpointFaultsTest, RedirectNamesWhereItPoints) {
  SimOptions o;
  o.endpoint_faults.redirect_to = "https://api.example.com/";
  Serve(o);
  HttpClient http(HttpClient::Options{1, absl::Seconds(2)});
  HttpResponse r = Call(http, "GET", base_ + "/v1/models");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.location, "https://api.example.com/v1/models");
  EXPECT_EQ(Stats()["endpoint_faults"]["redirect"], 1);
}

}  // namespace
}  // namespace medeval::sim
