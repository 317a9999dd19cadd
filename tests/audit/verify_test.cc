#include "audit/verify.h"

#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

TEST(VerifyTest, DetectsEditedAndMissingFiles) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "run/MedBench_LLM/A.jsonl", "{\"answer\": \"<A>\"}\n");
  testing::WriteText(tmp / "run/records.jsonl", "{}\n");
  testing::WriteText(tmp / "q/A.jsonl", "{\"question\": \"q\"}\n");
  testing::WriteText(tmp / "run/manifest.json",
                     std::string(R"({"outputs": [{"path": "MedBench_LLM/A.jsonl", "sha256": ")") +
                         *Sha256File(tmp / "run/MedBench_LLM/A.jsonl") +
                         R"("}, {"path": "records.jsonl", "sha256": ")" +
                         *Sha256File(tmp / "run/records.jsonl") +
                         R"("}], "inputs": [{"path": "A.jsonl", "sha256": ")" +
                         *Sha256File(tmp / "q/A.jsonl") + R"("}]})");
  auto ok = VerifyRun(tmp / "run", tmp / "q");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->ok());
  EXPECT_EQ(ok->files.size(), 3u);

  testing::WriteText(tmp / "run/MedBench_LLM/A.jsonl", "{\"answer\": \"<B>\"}\n");  // edited
  ASSERT_TRUE(RemoveAll(tmp / "run/records.jsonl").ok());
  auto bad = VerifyRun(tmp / "run", "");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->ok());
  EXPECT_EQ(bad->files[0].state, "changed");
  EXPECT_EQ(bad->files[1].state, "missing");
  EXPECT_FALSE(VerifyRun(tmp / "q", "").ok());  // no manifest
}

// A manifest is untrusted input: a number where a path belongs used to abort
// the process (an uncaught nlohmann::json type_error).
TEST(VerifyTest, AManifestWithANonStringPathIsAnError) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "run/manifest.json", R"({"outputs": [{"path": 42, "sha256": "00"}]})");
  auto r = VerifyRun(tmp / "run", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("outputs[0]"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("must be strings"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace medeval
