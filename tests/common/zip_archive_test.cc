#include "common/zip_archive.h"

#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

TEST(ZipArchiveTest, WritesFolderLayoutReproducibly) {
  testing::TempDir dir;
  testing::WriteText(dir / "a.jsonl", "{\"x\": 1}\n");
  testing::WriteText(dir / "b.jsonl", "中文\n");
  std::vector<ZipEntry> entries = {{"MedBench_LLM/a.jsonl", dir / "a.jsonl"},
                                   {"MedBench_LLM/b.jsonl", dir / "b.jsonl"}};
  ASSERT_TRUE(WriteZip(dir / "one.zip", {"MedBench_LLM"}, entries).ok());
  ASSERT_TRUE(WriteZip(dir / "two.zip", {"MedBench_LLM"}, entries).ok());
  EXPECT_EQ(*Sha256File(dir / "one.zip"), *Sha256File(dir / "two.zip"));
  auto members = ReadZip(dir / "one.zip");
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].name, "MedBench_LLM/");
  EXPECT_TRUE((*members)[0].is_dir);
  EXPECT_EQ((*members)[2].name, "MedBench_LLM/b.jsonl");
  EXPECT_EQ((*members)[2].data, "中文\n");
}

TEST(ZipArchiveTest, ReadingGarbageIsAClearError) {
  testing::TempDir dir;
  testing::WriteText(dir / "bad.zip", "not a zip");
  auto r = ReadZip(dir / "bad.zip");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medeval
