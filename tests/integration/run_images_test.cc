// VLM runs know and keep their images: every image's SHA-256 names the run
// and is in manifest.json (so `verify` covers it), a rerun asks exactly the
// questions whose images changed or appeared, and a run continued after a
// kill -9 sends every image's bytes. Real medeval processes, real sim.
#include <signal.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string VlmLine(const std::string& q, int id, const json& img) {
  return json{{"question", q}, {"answer", ""}, {"img_path", img}, {"other", {{"id", id}}}}.dump() +
         "\n";
}

class RunImagesTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o = sim::SimOptions()) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  int Requests() const { return Stats()["requests"].get<int>(); }
  int Asked(const std::string& q) const {
    json pq = Stats()["per_question"];
    const std::string key = sim::QuestionKey(q);
    return pq.contains(key) ? pq[key]["requests"].get<int>() : 0;
  }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {testing::MedevalBinary(),
                                  "run",
                                  "--data",
                                  tmp_ / "suite",
                                  "--model",
                                  "vlm",
                                  "--base-url",
                                  Url(),
                                  "--out",
                                  tmp_ / "results",
                                  "--skip-invalid"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  int Run(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = Args(std::move(extra));
    a.erase(a.begin());
    return testing::RunMedeval(a, tmp_.path(), &out_, &err_);
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(RunImagesTest, ARerunAsksExactlyTheQuestionsWhoseImagesChangedOrAppeared) {
  Serve();
  const std::string root = tmp_ / "suite";
  testing::WriteImage(JoinPath(root, "img/a.png"), "png", 32, 24);
  testing::WriteImage(JoinPath(root, "img/b.png"), "png", 40, 30);
  testing::WriteText(JoinPath(root, "MedVQA.jsonl"),
                     VlmLine("看 a。", 1, "img/a.png") + VlmLine("看 b。", 2, "img/b.png") +
                         VlmLine("看 c。", 3, "img/c.png") +
                         VlmLine("看 a 和 b。", 4, json::array({"img/a.png", "img/b.png"})));
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_EQ(Requests(), 3);  // c.png is missing: left out
  json m = json::parse(testing::ReadText(tmp_ / "results/vlm/manifest.json"));
  std::map<std::string, std::string> images;
  for (const auto& in : m["inputs"]) {
    if (in.contains("image")) images[in["path"]] = in["sha256"];
  }
  EXPECT_EQ(images.size(), 2u);
  EXPECT_EQ(images["img/a.png"], Sha256Hex(testing::ReadText(JoinPath(root, "img/a.png"))));
  std::string out, err;
  EXPECT_EQ(testing::RunMedeval({"verify", tmp_ / "results/vlm", "--data", root}, tmp_.path(), &out,
                                &err),
            0)
      << out << err;

  // The missing image appears and b.png is replaced: only the questions that
  // show c.png or b.png are asked.
  testing::WriteImage(JoinPath(root, "img/c.png"), "png", 20, 20);
  testing::WriteImage(JoinPath(root, "img/b.png"), "jpeg", 40, 30);
  EXPECT_NE(testing::RunMedeval({"verify", tmp_ / "results/vlm", "--data", root}, tmp_.path(), &out,
                                &err),
            0)
      << "verify misses a replaced image: " << out << err;
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "1 answered already by an earlier run")) << err_;
  EXPECT_EQ(Asked("看 a。"), 1);
  EXPECT_EQ(Asked("看 b。"), 2);
  EXPECT_EQ(Asked("看 c。"), 1);
  EXPECT_EQ(Asked("看 a 和 b。"), 2);
  EXPECT_EQ(Requests(), 3 + 3);
  EXPECT_EQ(Stats()["images"]["invalid"], 0);

  // The same command again asks nothing.
  ASSERT_EQ(Run(), 0) << err_;
  EXPECT_EQ(Requests(), 6);
}

TEST_F(RunImagesTest, AContinuedRunSendsEveryImage) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.capacity = 2;
  o.down_after = 40;  // the first run cannot end before the kill
  o.down_for = absl::Hours(1);
  Serve(o);
  const std::string root = tmp_ / "suite";
  testing::WriteImage(JoinPath(root, "img/a.png"), "png", 32, 24);
  testing::WriteImage(JoinPath(root, "img/b.jpg"), "jpeg", 40, 30);
  testing::WritePdf(JoinPath(root, "img/r.pdf"), 2);
  std::string lines;
  const int n = 240;
  for (int i = 0; i < n; ++i) {
    const char* img = i % 3 == 0 ? "img/a.png" : i % 3 == 1 ? "img/b.jpg" : "img/r.pdf";
    lines += VlmLine(absl::StrCat("问题 ", i), i, img);
  }
  testing::WriteText(JoinPath(root, "MedVQA.jsonl"), lines);
  {
    testing::Subprocess p;
    p.Start(Args({"--workers", "1", "--concurrency", "2"}), tmp_.path());
    ASSERT_TRUE(testing::KillDuringOutage(*sim_, p));
  }
  const int before = Requests();
  ASSERT_LT(before, n);
  ASSERT_EQ(Run({"--concurrency", "8"}), 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "continuing run")) << err_;
  EXPECT_EQ(Stats()["images"]["invalid"], 0) << "questions were sent without their images";
  json pq = Stats()["per_question"];
  for (int i = 0; i < n; ++i) {
    const std::string key = sim::QuestionKey(absl::StrCat("问题 ", i));
    ASSERT_TRUE(pq.contains(key)) << i;
    EXPECT_EQ(pq[key]["images"].get<int>(), i % 3 == 2 ? 2 : 1) << "question " << i;
  }
}

}  // namespace
}  // namespace medeval
