// `medeval sim` as a process: port file, endpoints, clean exit on SIGTERM,
// bad flags refused.
#include <signal.h>

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

TEST(SimCliTest, ServesOnAFreePortAndStopsOnSigterm) {
  testing::TempDir tmp;
  testing::Subprocess p;
  p.Start({testing::MedevalBinary(), "sim", "--port-file", tmp / "port", "--latency-ms", "1"},
          tmp.path());
  int port = 0;
  ASSERT_TRUE(testing::WaitFor([&] {
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(testing::ReadText(tmp / "port")), &port);
  }));
  auto health = testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", port, "/health"));
  EXPECT_EQ(health.status, 200);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(p.out(), absl::StrCat("127.0.0.1:", port, "/v1")); }));
  p.Kill(SIGTERM);
  EXPECT_EQ(p.Wait(absl::Seconds(10)), 0);
}

TEST(SimCliTest, SigtermWithRequestsQueuedBehindCapacityExitsCleanly) {
  testing::TempDir tmp;
  testing::Subprocess p;
  p.Start({testing::MedevalBinary(), "sim", "--port-file", tmp / "port", "--capacity", "1",
           "--latency-ms", "20000"},
          tmp.path());
  int port = 0;
  ASSERT_TRUE(testing::WaitFor([&] {
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(testing::ReadText(tmp / "port")), &port);
  }));
  const std::string base = absl::StrCat("http://127.0.0.1:", port);
  // One request in service, 29 queued behind the capacity of one (with a
  // few queued the crash was rare; with 16 or more, every time).
  std::vector<std::thread> clients;
  for (int i = 0; i < 30; ++i) {
    clients.emplace_back([base, i] {
      testing::HttpCall(
          "POST", base + "/v1/chat/completions",
          absl::StrCat(R"({"model": "m", "messages": [{"role": "user", "content": "q)", i,
                       R"("}]})"),
          {"Content-Type: application/json"}, absl::Seconds(30));
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] {
    auto st = testing::HttpCall("GET", base + "/stats");
    return absl::StrContains(st.body, "\"queued\":29");
  })) << testing::HttpCall("GET", base + "/stats").body;
  p.Kill(SIGTERM);
  EXPECT_EQ(p.Wait(absl::Seconds(10)), 0) << p.err();
  for (auto& t : clients) t.join();
}

TEST(SimCliTest, RefusesBadFlags) {
  testing::TempDir tmp;
  std::string out, err;
  EXPECT_EQ(testing::RunMedeval({"sim", "--fail-rate", "0.7", "--hang-rate", "0.7"}, tmp.path(),
                                &out, &err),
            2);
  EXPECT_TRUE(absl::StrContains(err, "more than 1")) << err;
  EXPECT_EQ(testing::RunMedeval({"sim", "--fail-rate", "1.5"}, tmp.path(), &out, &err), 2);
  EXPECT_EQ(testing::RunMedeval({"sim", "--overflow", "drop"}, tmp.path(), &out, &err), 2);
  EXPECT_EQ(testing::RunMedeval({"sim", "--empty-rate", "0.6", "--think-only-rate", "0.6"},
                                tmp.path(), &out, &err),
            2);
  EXPECT_EQ(testing::RunMedeval({"sim", "--listen", "nonsense"}, tmp.path(), &out, &err), 2);
}

}  // namespace
}  // namespace medeval
