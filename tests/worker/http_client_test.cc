#include "worker/http_client.h"

#include <future>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

TEST(HttpClientTest, ConnectionRefusedIsATransportError) {
  HttpClient http(HttpClient::Options{});
  HttpRequest req;
  req.method = "GET";
  req.url = absl::StrCat("http://127.0.0.1:", testing::FreePort(), "/");
  std::promise<HttpResponse> p;
  http.Send(req, [&p](HttpResponse r) { p.set_value(std::move(r)); });
  HttpResponse r = p.get_future().get();
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
  EXPECT_FALSE(r.timed_out);
}

TEST(HttpClientTest, TimeoutAndCancel) {
  sim::SimOptions o;
  o.hang_rate = 1.0;
  sim::SimServer server(o);
  ASSERT_TRUE(server.Start().ok());
  HttpClient http(HttpClient::Options{});
  HttpRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1/chat/completions");
  req.body = R"({"model": "m", "messages": [{"role": "user", "content": "q"}]})";
  req.timeout = absl::Milliseconds(200);
  std::promise<HttpResponse> p;
  http.Send(req, [&p](HttpResponse r) { p.set_value(std::move(r)); });
  EXPECT_TRUE(p.get_future().get().timed_out);

  // A cancelled transfer never calls back; a later one still does.
  bool called = false;
  req.timeout = absl::Seconds(1);
  uint64_t id = http.Send(req, [&called](HttpResponse) { called = true; });
  http.Cancel(id);
  absl::Notification timer;
  http.After(absl::Milliseconds(1200), [&timer] { timer.Notify(); });
  timer.WaitForNotification();
  EXPECT_FALSE(called);
}

TEST(HttpClientTest, TimersRunInOrderAndCanBeCancelled) {
  HttpClient http(HttpClient::Options{});
  std::vector<int> order;
  absl::Notification done;
  http.After(absl::Milliseconds(30), [&] { order.push_back(2); });
  http.After(absl::Milliseconds(10), [&] { order.push_back(1); });
  uint64_t never = http.After(absl::Milliseconds(20), [&] { order.push_back(99); });
  http.CancelTimer(never);
  http.After(absl::Milliseconds(60), [&] { done.Notify(); });
  done.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace medeval
