// The multimodal (VLM) track end to end: images and PDF reports travel in
// OpenAI vision requests to a real simulated model server, embedded and
// distributed, with missing images refused up front or left out and audited.
#include <poppler-document.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/suite.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "sim/answer_model.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::RunMedeval;

// Image parts a question should carry: one per picture, one per rendered
// page of a PDF (at most `max_pages`).
int ExpectedParts(const std::string& root, const json& img_path, int max_pages) {
  std::vector<std::string> paths;
  if (img_path.is_string()) paths.push_back(img_path.get<std::string>());
  if (img_path.is_array()) {
    for (const json& p : img_path) paths.push_back(p.get<std::string>());
  }
  int n = 0;
  for (const std::string& p : paths) {
    if (!absl::EndsWithIgnoreCase(p, ".pdf")) {
      ++n;
      continue;
    }
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(JoinPath(root, p)));
    EXPECT_NE(doc, nullptr) << p;
    if (doc != nullptr) n += std::min(doc->pages(), max_pages);
  }
  return n;
}

class VlmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim_ = std::make_unique<sim::SimServer>(sim::SimOptions());
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }

  // A small suite of our own: pictures, a multi-page report, and one line
  // whose image is missing.
  std::string WriteFixture() {
    const std::string root = tmp_ / "suite";
    testing::WriteImage(JoinPath(root, "MedVQA/a.png"), "png", 64, 48);
    testing::WriteImage(JoinPath(root, "MedVQA/b.jpg"), "jpeg", 40, 30);
    testing::WritePdf(JoinPath(root, "MedOCR/report-3p.pdf"), 3);
    testing::WritePdf(JoinPath(root, "MedOCR/report-1p.pdf"), 1);
    auto line = [](int id, const std::string& q, const json& img) {
      return json{{"question", q},
                  {"answer", ""},
                  {"img_path", img},
                  {"other", {{"id", id}, {"source", "fixture"}}}}
                 .dump() +
             "\n";
    };
    testing::WriteText(
        JoinPath(root, "MedVQA.jsonl"),
        line(1, "请描述图像中的主要发现。", "MedVQA/a.png") +
            line(2, "比较两幅图像的差异。", json::array({"MedVQA/a.png", "MedVQA/b.jpg"})) +
            line(3, "这张图像已经丢失。", "MedVQA/gone.png") +
            line(4, "请给出影像诊断。", json::array({"MedVQA/b.jpg"})));
    testing::WriteText(
        JoinPath(root, "MedOCR.jsonl"),
        line(1, "识别报告中的实体，输出json格式：{\"影像描述\": \"\", \"影像诊断\": \"\"}",
             "MedOCR/report-3p.pdf") +
            line(2, "识别报告中的实体，输出json格式：{\"检查项目\": \"\"}",
                 "MedOCR/report-1p.pdf"));
    return root;
  }

  // What the sim saw per question matches the suite: each answered line
  // carried its pictures and PDF pages, all decodable, none other.
  void CheckRequests(const std::string& root, int max_pages, size_t expect_answered) {
    json stats = Stats();
    EXPECT_EQ(stats["images"]["invalid"], 0) << stats["images"];
    LoadOptions lo;
    auto suite = LoadSuite(root, lo);
    ASSERT_TRUE(suite.ok()) << suite.status();
    size_t answered = 0;
    int64_t parts = 0;
    // Several lines may share a question text (a fixed task prompt, other
    // images): the sim counts those under one key, so they are checked
    // only through the total.
    std::map<std::string, std::set<int>> wanted;
    for (const Dataset& ds : suite->datasets) {
      auto text = ReadFile(JoinPath(root, ds.file.input_path));
      ASSERT_TRUE(text.ok());
      std::vector<absl::string_view> lines = SplitLines(*text);
      for (size_t i = 0; i < ds.size(); ++i) {
        const json in = json::parse(lines[ds.line(i) - 1]);
        const std::string key = sim::QuestionKey(ds.question(i));
        ASSERT_TRUE(stats["per_question"].contains(key))
            << ds.file.name << ":" << ds.line(i) << " was never asked";
        const int want = ExpectedParts(root, in["img_path"], max_pages);
        wanted[key].insert(want);
        parts += want;
        ++answered;
      }
    }
    for (const auto& [key, counts] : wanted) {
      if (counts.size() == 1) {
        EXPECT_EQ(stats["per_question"][key]["images"], *counts.begin());
      }
    }
    EXPECT_EQ(answered, expect_answered);
    EXPECT_EQ(stats["images"]["valid"], parts);
  }

  // Submission files keep img_path and other as in the input; records name
  // the images and hold no image bytes.
  void CheckOutputs(const std::string& root, const std::string& model_dir) {
    auto suite = LoadSuite(root, LoadOptions());
    ASSERT_TRUE(suite.ok());
    for (const Dataset& ds : suite->datasets) {
      auto in = ReadFile(JoinPath(root, ds.file.input_path));
      auto out = ReadFile(JoinPath(model_dir, "MedBench_VLM_QA/" + ds.file.output_name));
      ASSERT_TRUE(in.ok() && out.ok()) << ds.file.output_name;
      std::vector<absl::string_view> a = SplitLines(*in), b = SplitLines(*out);
      ASSERT_EQ(a.size(), b.size()) << ds.file.output_name;
      for (size_t i = 0; i < a.size(); ++i) {
        json x = json::parse(a[i]), y = json::parse(b[i]);
        EXPECT_EQ(x["img_path"], y["img_path"]) << ds.file.output_name << ":" << i + 1;
        EXPECT_EQ(x["other"], y["other"]) << ds.file.output_name << ":" << i + 1;
        EXPECT_EQ(x["question"], y["question"]) << ds.file.output_name << ":" << i + 1;
      }
    }
    auto zip = ReadZip(JoinPath(model_dir, "MedBench_VLM_QA.zip"));
    ASSERT_TRUE(zip.ok()) << zip.status();
    EXPECT_EQ(zip->size(), suite->datasets.size() + 1);  // the folder and its files
    const std::string records = testing::ReadText(JoinPath(model_dir, "records.jsonl"));
    EXPECT_FALSE(absl::StrContains(records, "base64"));
    EXPECT_FALSE(absl::StrContains(records, "iVBORw0KGgo"));  // a base64 PNG
    for (const json& r : testing::ReadJsonl(JoinPath(model_dir, "records.jsonl"))) {
      ASSERT_TRUE(r.contains("images")) << r.dump();
      for (const json& p : r["images"]) {
        EXPECT_TRUE(PathExists(JoinPath(root, p.get<std::string>()))) << p;
      }
    }
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(VlmTest, AMissingImageStopsTheRunBeforeAnyRequest) {
  const std::string root = WriteFixture();
  EXPECT_EQ(RunMedeval({"run", "--data", root, "--model", "vlm", "--base-url", Url(), "--out",
                        tmp_ / "results"},
                       tmp_.path(), &out_, &err_),
            2);
  EXPECT_TRUE(
      absl::StrContains(err_, JoinPath(root, "MedVQA.jsonl") + ":3: missing image MedVQA/gone.png"))
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "--skip-invalid")) << err_;
  EXPECT_EQ(Stats()["requests"], 0);
}

TEST_F(VlmTest, PicturesAndPdfPagesReachTheModelAsImageParts) {
  const std::string root = WriteFixture();
  ASSERT_EQ(
      RunMedeval({"run", "--data", root, "--model", "vlm", "--base-url", Url(), "--out",
                  tmp_ / "results", "--skip-invalid", "--pdf-max-pages", "2", "--pdf-dpi", "72"},
                 tmp_.path(), &out_, &err_),
      0)
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "leaving out 1 invalid line")) << err_;
  CheckRequests(root, 2, 5);
  CheckOutputs(root, tmp_ / "results/vlm");
  // Rendered pages are kept in the state folder, two of the three pages.
  auto cached = ListDir(tmp_ / "results/.medeval/cache/pdf");
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->size(), 2u);

  // The audit names the question left out and why.
  ASSERT_EQ(
      RunMedeval({"audit", tmp_ / "results/vlm", "--data", root, "--json", tmp_ / "audit.json"},
                 tmp_.path(), &out_, &err_),
      0)
      << out_ << err_;
  EXPECT_TRUE(absl::StrContains(
      out_, "MedVQA.jsonl:3: skipped: missing image MedVQA/gone.png (left out by --skip-invalid)"))
      << out_;
  EXPECT_NE(RunMedeval({"audit", tmp_ / "results/vlm", "--data", root, "--strict", "--json",
                        tmp_ / "audit.json"},
                       tmp_.path(), &out_, &err_),
            0)
      << "strict audits want every question answered";
}

TEST_F(VlmTest, DistributedWorkersGetTheImagesFromTheCoordinator) {
  const std::string root = WriteFixture();
  testing::Cluster cluster(tmp_ / "cluster");
  cluster.StartCoordinator();
  std::string out, err;
  ASSERT_EQ(cluster.Cli({"submit", "--data", root, "--model", "vlm", "--skip-invalid"}, &out, &err),
            0)
      << err;
  const std::string run(absl::StripAsciiWhitespace(out));
  // The worker starts once the suite is gone from disk: every byte it sends
  // comes from the coordinator, as on a machine without the data.
  const std::string moved = tmp_ / "moved-suite";
  ASSERT_EQ(::rename(root.c_str(), moved.c_str()), 0);
  cluster.StartWorker("w1", {"--model", "vlm", "--base-url", Url(), "--concurrency", "4"});
  ASSERT_TRUE(cluster.WaitRunFinished(run));
  ASSERT_EQ(::rename(moved.c_str(), root.c_str()), 0);
  CheckRequests(root, 4, 5);
  ASSERT_EQ(cluster.Cli({"fetch", run, "--out", tmp_ / "fetched"}, &out, &err), 0) << err;
  CheckOutputs(root, tmp_ / "fetched/vlm");
}

TEST_F(VlmTest, RealVlmSuiteWithTheImagesThatArePresent) {
  const std::string root = testing::SharedMedbench("v4/VLM");
  if (root.empty()) GTEST_SKIP() << "../shared/medbench is absent";
  // Without --skip-invalid: refused, every missing image named with its line.
  EXPECT_EQ(RunMedeval({"run", "--data", root, "--model", "vlm", "--base-url", Url(), "--out",
                        tmp_ / "results"},
                       tmp_.path(), &out_, &err_),
            2);
  EXPECT_TRUE(absl::StrContains(err_, JoinPath(root, "MedVQA.jsonl") + ":1: missing image"))
      << err_.substr(0, 2000);
  EXPECT_EQ(Stats()["requests"], 0);

  ASSERT_EQ(RunMedeval({"run", "--data", root, "--model", "vlm", "--base-url", Url(), "--out",
                        tmp_ / "results", "--skip-invalid"},
                       tmp_.path(), &out_, &err_),
            0)
      << err_.substr(err_.size() > 4000 ? err_.size() - 4000 : 0);
  auto suite = LoadSuite(root, LoadOptions());
  ASSERT_TRUE(suite.ok());
  ASSERT_GT(suite->question_count(), 0u);
  CheckRequests(root, 4, suite->question_count());
  CheckOutputs(root, tmp_ / "results/vlm");
  ASSERT_EQ(
      RunMedeval({"audit", tmp_ / "results/vlm", "--data", root, "--json", tmp_ / "audit.json"},
                 tmp_.path(), &out_, &err_),
      0)
      << out_ << err_;
  EXPECT_TRUE(absl::StrContains(out_, "skipped: missing image")) << out_;
}

}  // namespace
}  // namespace medeval
