// The simulated server's misbehaving answers, as a client sees them on the
// wire, and GET /v1/models/{id}.
#include "sim/response_faults.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;

class ResponseFaultsTest : public ::testing::Test {
 protected:
  void Serve(SimOptions o) {
    server_ = std::make_unique<SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port());
  }
  testing::SimpleResponse Chat(const std::string& question) {
    json b = {{"model", "m1"}, {"messages", {{{"role", "user"}, {"content", question}}}}};
    return testing::HttpCall("POST", base_ + "/v1/chat/completions", b.dump(),
                             {"Content-Type: application/json"});
  }
  static SimOptions With(ContentFault f) {
    SimOptions o;
    o.responses.rates[static_cast<size_t>(f)] = 1;
    return o;
  }
  json Message(const testing::SimpleResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.body.substr(0, 200);
    return j.is_object() ? j["choices"][0]["message"] : json();
  }

  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(ResponseFaultsTest, ContentFaultsShapeTheMessage) {
  Serve(With(ContentFault::kEmpty));
  EXPECT_EQ(Message(Chat("q"))["content"], "");
  Serve(With(ContentFault::kWhitespace));
  std::string ws = Message(Chat("q"))["content"];
  EXPECT_FALSE(ws.empty());
  EXPECT_TRUE(IsBlankText(ws));
  EXPECT_TRUE(absl::StrContains(ws, "\u3000"));
  Serve(With(ContentFault::kReasoningOnly));
  json m = Message(Chat("q"));
  EXPECT_TRUE(m["content"].is_null());
  EXPECT_TRUE(absl::StrContains(m["reasoning_content"].get<std::string>(),
                                AnswerQuestion("m1", "q", {}).content));
  Serve(With(ContentFault::kThinkOnly));
  std::string think = Message(Chat("q"))["content"];
  EXPECT_TRUE(absl::StartsWith(think, "<think>")) << think;
  EXPECT_TRUE(absl::EndsWith(absl::StripTrailingAsciiWhitespace(think), "</think>")) << think;
  Serve(With(ContentFault::kInvalidUtf8));
  auto r = Chat("q");
  EXPECT_FALSE(IsValidUtf8(r.body));
  EXPECT_EQ(json::parse(server_->StatsJson())["response_faults"]["invalid_utf8"], 1);
}

TEST_F(ResponseFaultsTest, HugeBodiesAndServedModel) {
  SimOptions o = With(ContentFault::kHuge);
  o.responses.huge_bytes = 3 << 20;
  o.responses.served_model = "swapped";
  Serve(o);
  auto r = Chat("q");
  EXPECT_EQ(r.status, 200);
  EXPECT_GT(r.body.size(), size_t{3} << 20);
  json j = json::parse(r.body);
  EXPECT_EQ(j["model"], "swapped");
  EXPECT_EQ(j["system_fingerprint"], "fp_medeval_sim");
  EXPECT_EQ(j["choices"][0]["message"]["content"], AnswerQuestion("m1", "q", {}).content);
}

TEST_F(ResponseFaultsTest, ControlTurnsAnswerFaultsOnAndOff) {
  Serve(SimOptions());
  auto set = [&](const std::string& body) {
    return testing::HttpCall("POST", base_ + "/control", body).status;
  };
  EXPECT_EQ(set(R"({"empty_rate": 1})"), 200);
  EXPECT_EQ(Message(Chat("q"))["content"], "");
  EXPECT_EQ(set(R"({"empty_rate": 0})"), 200);
  EXPECT_NE(Message(Chat("q"))["content"], "");
  EXPECT_EQ(set(R"({"empty_rate": 2})"), 400);
  EXPECT_EQ(set(R"({"bad_gzip_rate": 0.5})"), 200);
}

TEST(GzipTest, RoundTrips) {
  const std::string data(100000, 'x');
  auto gz = Gzip(data);
  ASSERT_TRUE(gz.ok());
  EXPECT_LT(gz->size(), 1000u);
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out(data.size() + 10, '\0');
  z.next_in = reinterpret_cast<Bytef*>(gz->data());
  z.avail_in = static_cast<uInt>(gz->size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  EXPECT_EQ(out, data);
}

TEST_F(ResponseFaultsTest, ModelById) {
  SimOptions o;
  o.model_name = "medeval-sim";
  Serve(o);
  auto ok = testing::HttpCall("GET", base_ + "/v1/models/medeval-sim");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body)["id"], "medeval-sim");
  auto missing = testing::HttpCall("GET", base_ + "/v1/models/other");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "model_not_found");
}

}  // namespace
}  // namespace medeval::sim
