// The simulated Batch API, over real HTTP on loopback.
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/multipart.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;
using testing::HttpCall;
using testing::WaitFor;

json ChatBody(const std::string& question, const std::string& model = "m1") {
  return {{"model", model},
          {"messages",
           {{{"role", "system"}, {"content", "You are a helpful assistant."}},
            {{"role", "user"}, {"content", question}}}},
          {"temperature", 0}};
}

std::string InputLine(const std::string& custom_id, const json& body) {
  return json{
      {"custom_id", custom_id}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
      .dump();
}

std::string InputFile(int n, const std::string& model = "m1") {
  std::string s;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(
        &s, InputLine(absl::StrCat("q-", i), ChatBody(testing::SyntheticQuestion(i), model)), "\n");
  }
  return s;
}

std::vector<json> Jsonl(const std::string& text) {
  std::vector<json> out;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    out.push_back(json::parse(l));
  }
  return out;
}

class BatchApiTest : public ::testing::Test {
 protected:
  void Serve(BatchOptions b, AnswerStyle style = {}) {
    SimOptions o;
    o.batch = b;
    o.style = style;
    server_ = std::make_unique<SimServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    base_ = absl::StrCat("http://127.0.0.1:", server_->port(), "/v1");
  }
  std::string Upload(const std::string& data, const std::string& purpose = "batch") {
    std::string ct;
    std::string body = BuildMultipart(
        {{"purpose", "", "", purpose}, {"file", "in.jsonl", "application/jsonl", data}}, &ct);
    auto r = HttpCall("POST", base_ + "/files", body, {"Content-Type: " + ct});
    EXPECT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["object"], "file");
    EXPECT_EQ(j["bytes"], data.size());
    EXPECT_EQ(j["purpose"], purpose);
    return j["id"];
  }
  testing::SimpleResponse Create(const std::string& file_id, const std::string& window = "24h") {
    json b = {{"input_file_id", file_id},
              {"endpoint", "/v1/chat/completions"},
              {"completion_window", window}};
    return HttpCall("POST", base_ + "/batches", b.dump(), {"Content-Type: application/json"});
  }
  json Get(const std::string& id) {
    auto r = HttpCall("GET", base_ + "/batches/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }
  json WaitStatus(const std::string& id, const std::set<std::string>& statuses) {
    json b;
    EXPECT_TRUE(WaitFor(
        [&] {
          b = Get(id);
          return statuses.count(b["status"].get<std::string>()) > 0;
        },
        absl::Seconds(30)))
        << b.dump();
    return b;
  }
  std::string Content(const json& file_id) {
    auto r = HttpCall("GET", base_ + "/files/" + file_id.get<std::string>() + "/content");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }
  json Stats() { return json::parse(server_->StatsJson()); }

  std::unique_ptr<SimServer> server_;
  std::string base_;
};

TEST_F(BatchApiTest, LifeCycleWithCountsAndAnswersOfTheOnlineModel) {
  BatchOptions b;
  b.lines_per_s = 40;
  b.validate_ms = 200;
  b.finalize_ms = 200;
  Serve(b);
  const int n = 40;
  const std::string file = Upload(InputFile(n));
  auto r = Create(file);
  ASSERT_EQ(r.status, 200) << r.body;
  json batch = json::parse(r.body);
  EXPECT_EQ(batch["object"], "batch");
  EXPECT_EQ(batch["status"], "validating");
  EXPECT_EQ(batch["input_file_id"], file);
  EXPECT_EQ(batch["completion_window"], "24h");
  const std::string id = batch["id"];
  // Counts grow while in progress.
  json mid = WaitStatus(id, {"in_progress"});
  json later;
  ASSERT_TRUE(WaitFor(
      [&] {
        later = Get(id);
        int64_t c = later["request_counts"]["completed"];
        return c > 0 && c < n;
      },
      absl::Seconds(10)));
  EXPECT_EQ(later["request_counts"]["total"], n);
  json done = WaitStatus(id, {"completed"});
  EXPECT_EQ(done["request_counts"]["completed"], n);
  EXPECT_EQ(done["request_counts"]["failed"], 0);
  EXPECT_TRUE(done["error_file_id"].is_null());
  for (const char* t : {"created_at", "in_progress_at", "finalizing_at", "completed_at"}) {
    EXPECT_TRUE(done[t].is_number_integer()) << t;
  }
  std::vector<json> out = Jsonl(Content(done["output_file_id"]));
  ASSERT_EQ(out.size(), static_cast<size_t>(n));
  std::set<std::string> ids;
  bool in_input_order = true;
  int64_t prompt = 0, completion = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string cid = out[i]["custom_id"];
    ids.insert(cid);
    if (cid != absl::StrCat("q-", i)) in_input_order = false;
    ASSERT_EQ(out[i]["response"]["status_code"], 200);
    const json& body = out[i]["response"]["body"];
    // The same request online gets the same answer and usage.
    const int q = std::stoi(cid.substr(2));
    auto online = HttpCall("POST", base_ + "/chat/completions",
                           ChatBody(testing::SyntheticQuestion(q)).dump(),
                           {"Content-Type: application/json"});
    ASSERT_EQ(online.status, 200);
    json o = json::parse(online.body);
    EXPECT_EQ(body["choices"][0]["message"]["content"], o["choices"][0]["message"]["content"]);
    EXPECT_EQ(body["usage"], o["usage"]);
    prompt += body["usage"]["prompt_tokens"].get<int64_t>();
    completion += body["usage"]["completion_tokens"].get<int64_t>();
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(n));
  EXPECT_FALSE(in_input_order) << "providers do not keep input order; neither does the sim";
  json st = Stats();
  EXPECT_EQ(st["batch"]["lines"]["succeeded"], n);
  EXPECT_EQ(st["batch"]["tokens"]["prompt"], prompt);
  EXPECT_EQ(st["batch"]["tokens"]["completion"], completion);
  // Each question: once in the batch, once online.
  EXPECT_EQ(st["questions"], n);
  for (auto& [k, v] : st["per_question"].items()) EXPECT_EQ(v["requests"], 2) << k;
}

TEST_F(BatchApiTest, InvalidFileFailsWithLineNumbers) {
  Serve(BatchOptions());
  std::string data =
      InputLine("a", ChatBody("q1")) + "\n" + "{not json\n" + InputLine("a", ChatBody("q3")) +
      "\n" +
      json{{"custom_id", "d"},
           {"method", "POST"},
           {"url", "/v1/embeddings"},
           {"body", ChatBody("q4")}}
          .dump() +
      "\n" + InputLine("e", ChatBody("q5", "other-model")) + "\n" +
      json{{"custom_id", "f"}, {"method", "POST"}, {"url", "/v1/chat/completions"}}.dump() + "\n";
  auto r = Create(Upload(data));
  ASSERT_EQ(r.status, 200) << r.body;
  json b = WaitStatus(json::parse(r.body)["id"], {"failed"});
  ASSERT_TRUE(b["errors"].is_object()) << b.dump();
  std::map<int, std::string> by_line;
  for (const json& e : b["errors"]["data"]) by_line[e["line"].get<int>()] = e["code"];
  EXPECT_EQ(by_line, (std::map<int, std::string>{{2, "invalid_json_line"},
                                                 {3, "duplicate_custom_id"},
                                                 {4, "invalid_url"},
                                                 {5, "mismatched_model"},
                                                 {6, "missing_required_parameter"}}))
      << b["errors"].dump();
  EXPECT_TRUE(b["failed_at"].is_number_integer());
  EXPECT_TRUE(b["output_file_id"].is_null());
  EXPECT_EQ(Stats()["questions"], 0) << "nothing of a failed file is asked";
}

TEST_F(BatchApiTest, RefusesWrongRequests) {
  BatchOptions b;
  b.max_lines = 3;
  Serve(b);
  EXPECT_EQ(Create("file-nope").status, 404);
  const std::string f = Upload(InputFile(2));
  EXPECT_EQ(Create(f, "1h").status, 400);
  EXPECT_EQ(Create(Upload(InputFile(2), "fine-tune")).status, 400);
  auto r = Create(Upload(InputFile(4)));
  ASSERT_EQ(r.status, 200);
  json failed = WaitStatus(json::parse(r.body)["id"], {"failed"});
  EXPECT_EQ(failed["errors"]["data"][0]["code"], "too_many_requests");
  EXPECT_EQ(HttpCall("GET", base_ + "/batches/batch_nope").status, 404);
}

TEST_F(BatchApiTest, PerLineFailuresGoToTheErrorFile) {
  BatchOptions b;
  b.lines_per_s = 0;
  b.line_fail_rate = 0.3;
  Serve(b);
  const int n = 50;
  auto r = Create(Upload(InputFile(n)));
  json done = WaitStatus(json::parse(r.body)["id"], {"completed"});
  const int64_t ok = done["request_counts"]["completed"], failed = done["request_counts"]["failed"];
  EXPECT_EQ(ok + failed, n);
  EXPECT_GT(failed, 5);
  EXPECT_GT(ok, 20);
  std::vector<json> out = Jsonl(Content(done["output_file_id"]));
  std::vector<json> err = Jsonl(Content(done["error_file_id"]));
  EXPECT_EQ(static_cast<int64_t>(out.size()), ok);
  ASSERT_EQ(static_cast<int64_t>(err.size()), failed);
  std::set<std::string> all;
  for (const json& e : err) {
    EXPECT_EQ(e["response"]["status_code"], 500);
    EXPECT_TRUE(e["response"]["body"]["error"]["message"].is_string());
    all.insert(e["custom_id"].get<std::string>());
  }
  for (const json& o : out) all.insert(o["custom_id"].get<std::string>());
  EXPECT_EQ(all.size(), static_cast<size_t>(n));
}

TEST_F(BatchApiTest, ExpiresWhenTheWindowEndsFirst) {
  BatchOptions b;
  b.lines_per_s = 20;
  b.validate_ms = 0;
  b.expire_s = 0.5;
  Serve(b);
  const int n = 40;
  auto r = Create(Upload(InputFile(n)));
  json done = WaitStatus(json::parse(r.body)["id"], {"expired"});
  const int64_t ok = done["request_counts"]["completed"];
  EXPECT_GT(ok, 0);
  EXPECT_LT(ok, n);
  EXPECT_EQ(done["request_counts"]["failed"], n - ok);
  EXPECT_TRUE(done["expired_at"].is_number_integer());
  EXPECT_EQ(Jsonl(Content(done["output_file_id"])).size(), static_cast<size_t>(ok));
  std::vector<json> err = Jsonl(Content(done["error_file_id"]));
  ASSERT_EQ(static_cast<int64_t>(err.size()), n - ok);
  for (const json& e : err) {
    EXPECT_EQ(e["error"]["code"], "batch_expired");
    EXPECT_TRUE(e["response"].is_null());
  }
  EXPECT_EQ(Stats()["batch"]["lines"]["expired"], n - ok);
}

TEST_F(BatchApiTest, CancelKeepsWhatWasDone) {
  BatchOptions b;
  b.lines_per_s = 20;
  b.validate_ms = 0;
  b.finalize_ms = 100;
  Serve(b);
  const int n = 200;
  auto r = Create(Upload(InputFile(n)));
  const std::string id = json::parse(r.body)["id"];
  ASSERT_TRUE(WaitFor([&] { return Get(id)["request_counts"]["completed"] > 0; }));
  auto c = HttpCall("POST", base_ + "/batches/" + id + "/cancel", "", {});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["status"], "cancelling");
  json done = WaitStatus(id, {"cancelled"});
  const int64_t ok = done["request_counts"]["completed"];
  EXPECT_LT(ok, n);
  EXPECT_EQ(Jsonl(Content(done["output_file_id"])).size(), static_cast<size_t>(ok));
  EXPECT_EQ(Stats()["batch"]["lines"]["succeeded"], ok) << "nothing is asked after the cancel";
  // A finished batch cannot be cancelled again.
  EXPECT_EQ(HttpCall("POST", base_ + "/batches/" + id + "/cancel", "", {}).status, 409);
}

TEST_F(BatchApiTest, FilesAndListing) {
  Serve(BatchOptions());
  const std::string data = InputFile(3);
  const std::string f = Upload(data);
  auto meta = HttpCall("GET", base_ + "/files/" + f);
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(json::parse(meta.body)["filename"], "in.jsonl");
  EXPECT_EQ(Content(json(f)), data);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(json::parse(Create(f).body)["id"]);
  auto page = json::parse(HttpCall("GET", base_ + "/batches?limit=2").body);
  ASSERT_EQ(page["data"].size(), 2u);
  EXPECT_EQ(page["data"][0]["id"], ids[2]);  // newest first
  EXPECT_TRUE(page["has_more"].get<bool>());
  auto rest = json::parse(
      HttpCall("GET", base_ + "/batches?limit=2&after=" + page["last_id"].get<std::string>()).body);
  ASSERT_EQ(rest["data"].size(), 1u);
  EXPECT_EQ(rest["data"][0]["id"], ids[0]);
  EXPECT_FALSE(rest["has_more"].get<bool>());
  auto del = HttpCall("DELETE", base_ + "/files/" + f);
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(json::parse(del.body)["deleted"].get<bool>());
  EXPECT_EQ(HttpCall("GET", base_ + "/files/" + f).status, 404);
  std::string ct;
  std::string no_file = BuildMultipart({{"purpose", "", "", "batch"}}, &ct);
  EXPECT_EQ(HttpCall("POST", base_ + "/files", no_file, {"Content-Type: " + ct}).status, 400);
}

TEST_F(BatchApiTest, EnqueuedTokenLimit) {
  BatchOptions b;
  b.lines_per_s = 1;  // the first batch stays in progress
  b.validate_ms = 0;
  // A prompt token is a code point: 28 of the system prompt, 9 of each question.
  b.max_enqueued_tokens = 500;  // one file of 10 (370 tokens) fits, two do not
  Serve(b);
  const std::string data = InputFile(10);
  auto first = Create(Upload(data));
  EXPECT_EQ(WaitStatus(json::parse(first.body)["id"], {"in_progress"})["status"], "in_progress");
  auto second = Create(Upload(data));
  json failed = WaitStatus(json::parse(second.body)["id"], {"failed"});
  EXPECT_EQ(failed["errors"]["data"][0]["code"], "token_limit_exceeded");
}

TEST(MultipartTest, RoundTrip) {
  std::string ct;
  std::string body = BuildMultipart(
      {{"purpose", "", "", "batch"}, {"file", "a.jsonl", "application/jsonl", "x\r\ny\n"}}, &ct);
  auto parts = ParseMultipart(ct, body);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "purpose");
  EXPECT_EQ((*parts)[0].data, "batch");
  EXPECT_EQ((*parts)[1].filename, "a.jsonl");
  EXPECT_EQ((*parts)[1].data, "x\r\ny\n");
  EXPECT_FALSE(ParseMultipart("application/json", body).ok());
  EXPECT_FALSE(ParseMultipart(ct, body.substr(0, body.size() / 2)).ok());
}

}  // namespace
}  // namespace medeval::sim
