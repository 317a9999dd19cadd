#include "tests/integration/output_checks.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/reasoning.h"
#include "common/sha256.h"
#include "common/suite.h"
#include "common/zip_archive.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {

using ojson = nlohmann::ordered_json;

void CheckRunOutputs(const std::string& data_dir, const std::string& model_dir,
                     const std::string& model, const sim::AnswerStyle& style) {
  LoadOptions lo;
  lo.check_images = false;
  auto suite = LoadSuite(data_dir, lo);
  ASSERT_TRUE(suite.ok()) << suite.status();
  const std::string folder(SubmissionFolder(suite->track));
  size_t questions = 0;
  std::vector<ZipMember> expected_zip = {{folder + "/", "", true}};
  for (const Dataset& ds : suite->datasets) {
    const std::string in_text = testing::ReadText(JoinPath(data_dir, ds.file.input_path));
    const std::string out_path = JoinPath(model_dir, JoinPath(folder, ds.file.output_name));
    const std::string out_text = testing::ReadText(out_path);
    expected_zip.push_back({JoinPath(folder, ds.file.output_name), out_text, false});
    std::vector<absl::string_view> in = SplitLines(in_text), out = SplitLines(out_text);
    ASSERT_EQ(out.size(), in.size()) << out_path;
    size_t local = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (local >= ds.size() || ds.line(local) != i + 1) {
        EXPECT_EQ(out[i], in[i]) << out_path << ":" << i + 1;
        continue;
      }
      ojson a = ojson::parse(in[i].begin(), in[i].end());
      ojson b = ojson::parse(out[i].begin(), out[i].end());
      const std::string question = a["question"];
      const std::string want =
          SplitReasoning(sim::AnswerQuestion(model, question, style).content).answer;
      EXPECT_EQ(b["answer"], want) << out_path << ":" << i + 1;
      // Same fields in the same order; only the answer differs.
      std::vector<std::string> ka, kb;
      for (auto it = a.begin(); it != a.end(); ++it) ka.push_back(it.key());
      for (auto it = b.begin(); it != b.end(); ++it) kb.push_back(it.key());
      if (!a.contains("answer")) ka.push_back("answer");
      EXPECT_EQ(ka, kb) << out_path << ":" << i + 1;
      a.erase("answer");
      b.erase("answer");
      EXPECT_EQ(a, b) << out_path << ":" << i + 1;
      ++local;
      ++questions;
    }
  }
  auto zip = ReadZip(JoinPath(model_dir, folder + ".zip"));
  ASSERT_TRUE(zip.ok()) << zip.status();
  ASSERT_EQ(zip->size(), expected_zip.size());
  for (size_t i = 0; i < zip->size(); ++i) {
    EXPECT_EQ((*zip)[i].name, expected_zip[i].name);
    EXPECT_EQ((*zip)[i].data, expected_zip[i].data) << expected_zip[i].name;
  }
  auto records = testing::ReadJsonl(JoinPath(model_dir, "records.jsonl"));
  EXPECT_EQ(records.size(), questions);
  for (const auto& r : records) EXPECT_EQ(r["status"], "answered") << r.dump();
  nlohmann::json m = nlohmann::json::parse(testing::ReadText(JoinPath(model_dir, "manifest.json")));
  EXPECT_EQ(m["model"], model);
  EXPECT_EQ(m["complete"], true);
  EXPECT_EQ(m["counts"]["answered"], questions);
  for (const auto& o : m["outputs"]) {
    EXPECT_EQ(o["sha256"], *Sha256File(JoinPath(model_dir, o["path"].get<std::string>())))
        << o.dump();
  }
}

}  // namespace medeval
