#include "coordinator/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

std::vector<std::pair<uint64_t, std::string>> Replay(const std::string& path, uint64_t* dropped) {
  std::vector<std::pair<uint64_t, std::string>> out;
  auto f = JournalFile::Open(
      path, [&](uint64_t off, absl::string_view p) { out.emplace_back(off, std::string(p)); },
      dropped);
  EXPECT_TRUE(f.ok()) << f.status();
  return out;
}

uint64_t AppendSync(JournalWriter& w, std::shared_ptr<JournalFile> f, const std::string& payload) {
  std::promise<uint64_t> p;
  w.Append(f, payload, [&p](absl::StatusOr<uint64_t> off) { p.set_value(*off); });
  return p.get_future().get();
}

TEST(JournalTest, AppendsAndReplaysInOrder) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  uint64_t dropped = 0;
  std::vector<uint64_t> offsets;
  {
    auto f = JournalFile::Open(
        path, [](uint64_t, absl::string_view) {}, &dropped);
    ASSERT_TRUE(f.ok());
    JournalWriter w;
    for (int i = 0; i < 5; ++i) offsets.push_back(AppendSync(w, *f, absl::StrCat("record-", i)));
    EXPECT_EQ(*(*f)->ReadAt(offsets[3]), "record-3");
    EXPECT_EQ((*f)->durable_size(), offsets[4] + 8 + 8);
  }
  auto records = Replay(path, &dropped);
  ASSERT_EQ(records.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(records[i].first, offsets[i]);
    EXPECT_EQ(records[i].second, absl::StrCat("record-", i));
  }
  EXPECT_EQ(dropped, 0u);
}

TEST(JournalTest, DropsATornTail) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  uint64_t dropped = 0;
  {
    auto f = JournalFile::Open(
        path, [](uint64_t, absl::string_view) {}, &dropped);
    JournalWriter w;
    AppendSync(w, *f, "one");
    AppendSync(w, *f, "two");
  }
  // A crash in the middle of writing a third record: header and half a payload.
  std::string data = *ReadFile(path);
  std::string torn = data + std::string("\x20\x00\x00\x00\x01\x02\x03\x04half", 12);
  ASSERT_TRUE(WriteFileAtomic(path, torn, false).ok());
  auto records = Replay(path, &dropped);
  EXPECT_EQ(records.size(), 2u);
  EXPECT_EQ(dropped, 12u);
  EXPECT_EQ(ReadFile(path)->size(), data.size());  // cut back to the last good record
  // Appending after recovery continues a valid journal.
  {
    auto f = JournalFile::Open(
        path, [](uint64_t, absl::string_view) {}, &dropped);
    JournalWriter w;
    AppendSync(w, *f, "three");
  }
  records = Replay(path, &dropped);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].second, "three");
}

TEST(JournalTest, StopsAtACorruptRecord) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  uint64_t dropped = 0;
  {
    auto f = JournalFile::Open(
        path, [](uint64_t, absl::string_view) {}, &dropped);
    JournalWriter w;
    AppendSync(w, *f, "first");
    AppendSync(w, *f, "second");
    AppendSync(w, *f, "third");
  }
  std::string data = *ReadFile(path);
  data[8 + 5 + 8 + 2] ^= 0x40;  // flip a bit in "second"
  ASSERT_TRUE(WriteFileAtomic(path, data, false).ok());
  auto records = Replay(path, &dropped);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].second, "first");
  EXPECT_GT(dropped, 0u);
}

TEST(JournalTest, CommitsConcurrentAppendsInGroups) {
  testing::TempDir dir;
  uint64_t dropped = 0;
  auto f = JournalFile::Open(
      dir / "journal", [](uint64_t, absl::string_view) {}, &dropped);
  JournalWriter w;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        w.Append(*f, absl::StrCat(t, "-", i), [&done](absl::StatusOr<uint64_t> off) {
          ASSERT_TRUE(off.ok());
          ++done;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  w.Flush();
  EXPECT_EQ(done.load(), 2000);
  JournalWriter::Stats s = w.stats();
  EXPECT_EQ(s.records, 2000u);
  EXPECT_LT(s.batches, 2000u);  // fsyncs were shared
  auto records = Replay(dir / "journal", &dropped);
  EXPECT_EQ(records.size(), 2000u);
}

}  // namespace
}  // namespace medeval
