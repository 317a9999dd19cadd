#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "common/file_writer.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/faulty_file_ops.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

bool IsCharDevice(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// Writing by rename used to replace the device node itself (as root).
TEST(SplitLinesTest, HandlesCrLfAndMissingFinalNewline) {
  auto lines = SplitLines("a\r\nb\n\nc");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_EQ(lines[1], "b");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3], "c");
  EXPECT_EQ(SplitLines("a\n").size(), 1u);
}

TEST(FileUtilTest, AtomicWritesGoThroughToDevicesAndLinks) {
  ASSERT_TRUE(IsCharDevice("/dev/null"));
  ASSERT_TRUE(WriteFileAtomic("/dev/null", "1234\n", false).ok());
  EXPECT_TRUE(IsCharDevice("/dev/null"));

  testing::TempDir tmp;
  testing::WriteText(tmp / "target", "old");
  ASSERT_EQ(::symlink((tmp / "target").c_str(), (tmp / "link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(tmp / "link", "new", true).ok());
  struct stat st;
  ASSERT_EQ(::lstat((tmp / "link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));  // the link stays a link
  EXPECT_EQ(testing::ReadText(tmp / "target"), "new");

  ASSERT_TRUE(MakeDirs(tmp / "dir").ok());
  EXPECT_EQ(WriteFileAtomic(tmp / "dir", "x").code(), absl::StatusCode::kInvalidArgument);
}

TEST(FileUtilTest, AFullDiskOrACrashBeforeTheRenameKeepsTheOldFile) {
  testing::TempDir tmp;
  testing::WriteText(tmp / "f", "old contents");
  testing::FaultyFileOps faults(tmp.path());
  testing::ScopedFileOps installed(&faults);
  faults.FailWritesAfter("f.tmp", 3, ENOSPC);
  absl::Status st = WriteFileAtomic(tmp / "f", "new contents that do not fit");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(testing::ReadText(tmp / "f"), "old contents");
  EXPECT_EQ(ListDir(tmp.path())->size(), 1u);  // no temporary file left

  faults.Heal();
  faults.FailSyncs("f.tmp", EIO);
  EXPECT_FALSE(WriteFileAtomic(tmp / "f", "new").ok());
  EXPECT_EQ(testing::ReadText(tmp / "f"), "old contents");

  faults.Heal();
  faults.CrashAtRename("/f");
  EXPECT_FALSE(WriteFileAtomic(tmp / "f", "new").ok());
  EXPECT_EQ(testing::ReadText(tmp / "f"), "old contents");

  // A rename whose directory was never synced is lost in a power cut; a
  // durable write syncs it.
  faults.Heal();
  faults.LoseUnsyncedEntries();
  ASSERT_TRUE(WriteFileAtomic(tmp / "g", "durable", true).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp / "h", "not durable", false).ok());
  faults.LoseUnsyncedEntries();
  EXPECT_EQ(testing::ReadText(tmp / "g"), "durable");
  EXPECT_FALSE(PathExists(tmp / "h"));
}

TEST(FileUtilTest, AFileWriterStreamsAndCommitsOrLeavesNothing) {
  testing::TempDir tmp;
  {
    auto w = FileWriter::Create(tmp / "out");
    ASSERT_TRUE(w.ok());
    std::string big(3 << 20, 'a');
    (*w)->Append("head\n");
    (*w)->Append(big);
    (*w)->Append("tail\n");
    ASSERT_TRUE((*w)->Commit().ok());
    EXPECT_EQ((*w)->sha256(), Sha256Hex("head\n" + big + "tail\n"));
    EXPECT_EQ((*w)->size(), big.size() + 10);
  }
  EXPECT_EQ(*Sha256File(tmp / "out"), Sha256Hex("head\n" + std::string(3 << 20, 'a') + "tail\n"));
  testing::FaultyFileOps faults(tmp.path());
  testing::ScopedFileOps installed(&faults);
  faults.FailWritesAfter("out2", 100, ENOSPC);
  {
    auto w = FileWriter::Create(tmp / "out2");
    ASSERT_TRUE(w.ok());
    (*w)->Append(std::string(2 << 20, 'b'));
    absl::Status st = (*w)->Commit();
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  }
  EXPECT_FALSE(PathExists(tmp / "out2"));
  EXPECT_EQ(ListDir(tmp.path())->size(), 1u);
}

}  // namespace
}  // namespace medeval
