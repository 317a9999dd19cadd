#include "coordinator/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/faulty_file_ops.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

constexpr char kRun[] = "run-1";
constexpr size_t kHeaderBytes = 13;

struct Replayed {
  std::vector<std::pair<uint64_t, std::string>> records;
  JournalReplay replay;
  absl::Status status;
};

Replayed Replay(const std::string& path, const std::string& run = kRun) {
  Replayed r;
  auto f = JournalFile::Open(
      path, run,
      [&](uint64_t off, absl::string_view p) { r.records.emplace_back(off, std::string(p)); },
      &r.replay);
  r.status = f.status();
  return r;
}

absl::StatusOr<uint64_t> Append(JournalWriter& w, std::shared_ptr<JournalFile> f,
                                const std::string& payload) {
  std::promise<absl::StatusOr<uint64_t>> p;
  w.Append(f, payload, [&p](absl::StatusOr<uint64_t> off) { p.set_value(off); });
  return p.get_future().get();
}

uint64_t AppendSync(JournalWriter& w, std::shared_ptr<JournalFile> f, const std::string& payload) {
  auto off = Append(w, f, payload);
  EXPECT_TRUE(off.ok()) << off.status();
  return off.ok() ? *off : 0;
}

// A journal of `n` records "record-<i>" (padded so they are easy to find);
// their offsets go to `*offsets`.
void WriteJournal(const std::string& path, int n, std::vector<uint64_t>* offsets) {
  auto f = JournalFile::Create(path, kRun);
  ASSERT_TRUE(f.ok()) << f.status();
  JournalWriter w;
  for (int i = 0; i < n; ++i) offsets->push_back(AppendSync(w, *f, absl::StrCat("record-", i)));
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

TEST(JournalTest, AppendsAndReplaysInOrder) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::vector<uint64_t> offsets;
  {
    auto f = JournalFile::Create(path, kRun);
    ASSERT_TRUE(f.ok());
    JournalWriter w;
    for (int i = 0; i < 5; ++i) offsets.push_back(AppendSync(w, *f, absl::StrCat("record-", i)));
    EXPECT_EQ(*(*f)->ReadAt(offsets[3]), "record-3");
    EXPECT_EQ((*f)->durable_size(), offsets[4] + kHeaderBytes + 8);
  }
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r.records[i].first, offsets[i]);
    EXPECT_EQ(r.records[i].second, absl::StrCat("record-", i));
  }
  EXPECT_EQ(r.replay.dropped_tail, 0u);
  EXPECT_TRUE(r.replay.damaged.empty());
  EXPECT_EQ(JournalFile::Create(path, kRun).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(JournalTest, DropsATornTailOnly) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::vector<uint64_t> offsets;
  WriteJournal(path, 2, &offsets);
  // A crash in the middle of writing a third record: its start only.
  const std::string data = *ReadFile(path);
  std::string record = data.substr(offsets[1]);
  ASSERT_TRUE(WriteFileAtomic(path, data + record.substr(0, record.size() - 3), false).ok());
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.replay.dropped_tail, record.size() - 3);
  EXPECT_EQ(FileSize(path), data.size());  // cut back to the last good record
  // Appending after recovery continues a valid journal.
  {
    JournalReplay replay;
    auto f = JournalFile::Open(
        path, kRun, [](uint64_t, absl::string_view) {}, &replay);
    ASSERT_TRUE(f.ok());
    JournalWriter w;
    AppendSync(w, *f, "three");
  }
  r = Replay(path);
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[2].second, "three");
}

// A flipped byte in the middle used to cut the journal there, silently
// dropping every later (acknowledged, fsynced) answer.
TEST(JournalTest, CorruptionInTheMiddleKeepsEveryIntactRecordAndSaysWhere) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::vector<uint64_t> offsets;
  WriteJournal(path, 6, &offsets);
  std::string data = *ReadFile(path);
  data[offsets[2] + kHeaderBytes + 3] ^= 0x40;  // a bit of "record-2"
  ASSERT_TRUE(WriteFileAtomic(path, data, false).ok());
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  std::vector<std::string> got;
  for (auto& [off, p] : r.records) got.push_back(p);
  EXPECT_EQ(got,
            (std::vector<std::string>{"record-0", "record-1", "record-3", "record-4", "record-5"}));
  ASSERT_EQ(r.replay.damaged.size(), 1u);
  EXPECT_EQ(r.replay.damaged[0].first, offsets[2]);
  EXPECT_EQ(r.replay.damaged[0].second, offsets[3] - offsets[2]);
  EXPECT_EQ(r.replay.dropped_tail, 0u);
  EXPECT_EQ(FileSize(path), data.size());  // nothing cut away
}

TEST(JournalTest, TheChecksumCoversLengthAndType) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::vector<uint64_t> offsets;
  WriteJournal(path, 4, &offsets);
  std::string data = *ReadFile(path);
  data[offsets[1] + 12] ^= 0x01;  // the type byte of record 1
  data[offsets[2] + 8] ^= 0x01;   // a length byte of record 2 (shorter by one)
  ASSERT_TRUE(WriteFileAtomic(path, data, false).ok());
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].second, "record-0");
  EXPECT_EQ(r.records[1].second, "record-3");
}

// Zeros used to read as valid empty records ("question 0 failed").
TEST(JournalTest, ZeroFilledRegionsAreNotRecords) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::vector<uint64_t> offsets;
  WriteJournal(path, 3, &offsets);
  std::string data = *ReadFile(path);
  // A zeroed block in the middle and a zero-filled tail (a file extended by a
  // crash before its data reached the disk).
  std::string damaged = data.substr(0, offsets[1]) + std::string(4096, '\0') +
                        data.substr(offsets[2]) + std::string(8192, '\0');
  ASSERT_TRUE(WriteFileAtomic(path, damaged, false).ok());
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].second, "record-0");
  EXPECT_EQ(r.records[1].second, "record-2");
  ASSERT_EQ(r.replay.damaged.size(), 1u);
  EXPECT_EQ(r.replay.damaged[0].first, offsets[1]);
  EXPECT_EQ(r.replay.dropped_tail, 8192u);

  ASSERT_TRUE(WriteFileAtomic(path, std::string(4096, '\0'), false).ok());
  r = Replay(path);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_TRUE(r.records.empty());
  EXPECT_EQ(FileSize(path), 4096u);  // not "repaired" into an empty journal
}

TEST(JournalTest, AJournalOfAnotherRunIsRefused) {
  testing::TempDir dir;
  std::vector<uint64_t> offsets;
  WriteJournal(dir / "journal", 3, &offsets);
  Replayed r = Replay(dir / "journal", "run-2");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "belongs to run run-1")) << r.status;
  EXPECT_TRUE(r.records.empty());
  // Without its header, another run's records still do not validate here.
  std::string data = *ReadFile(dir / "journal");
  ASSERT_TRUE(WriteFileAtomic(dir / "journal", data.substr(offsets[0]), false).ok());
  r = Replay(dir / "journal", "run-2");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_TRUE(r.records.empty());
}

TEST(JournalTest, MissingAndEmptyJournalsAreErrors) {
  testing::TempDir dir;
  Replayed r = Replay(dir / "journal");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound) << r.status;
  testing::WriteText(dir / "journal", "");
  r = Replay(dir / "journal");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "empty")) << r.status;
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Result folders written by earlier versions still resume.
TEST(JournalTest, ReadsAndRewritesTheEarlierFormat) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  std::string old;
  for (std::string p : {"alpha", "beta", "gamma"}) {
    PutU32(&old, static_cast<uint32_t>(p.size()));
    PutU32(&old,
           static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(p.data()), p.size())));
    old += p;
  }
  old += std::string("\x20\x00\x00\x00torn", 8);  // an interrupted write
  testing::WriteText(path, old);
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[2].second, "gamma");
  EXPECT_TRUE(r.replay.converted);
  {
    JournalReplay replay;
    auto f = JournalFile::Open(
        path, kRun, [](uint64_t, absl::string_view) {}, &replay);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_FALSE(replay.converted);
    JournalWriter w;
    AppendSync(w, *f, "delta");
    EXPECT_EQ(*(*f)->ReadAt(r.records[1].first), "beta");
  }
  r = Replay(path);
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[3].second, "delta");
}

// A full disk mid-write used to leave a partial record mid-file with later
// records written after it.
TEST(JournalTest, AFailedWriteIsRolledBackAndSticky) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  testing::FaultyFileOps faults(dir.path());
  testing::ScopedFileOps installed(&faults);
  auto f = JournalFile::Create(path, kRun);
  ASSERT_TRUE(f.ok());
  JournalWriter w;
  AppendSync(w, *f, "first");
  const uint64_t durable = (*f)->durable_size();
  faults.FailWritesAfter("journal", 10, ENOSPC);  // part of the next record fits
  auto second = Append(w, *f, std::string(100, 'x'));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  EXPECT_EQ(FileSize(path), durable);  // the partial record is gone
  faults.Heal();
  // Space is back, but this journal takes nothing more: the run must stop.
  auto third = Append(w, *f, "third");
  EXPECT_FALSE(third.ok());
  EXPECT_EQ(FileSize(path), durable);
  EXPECT_EQ((*f)->durable_size(), durable);
  Replayed r = Replay(path);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].second, "first");
}

TEST(JournalTest, EioOnWriteIsRolledBackAndSticky) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  testing::FaultyFileOps faults(dir.path());
  testing::ScopedFileOps installed(&faults);
  auto f = JournalFile::Create(path, kRun);
  ASSERT_TRUE(f.ok());
  JournalWriter w;
  AppendSync(w, *f, "first");
  faults.FailWritesAfter("journal", 0, EIO);
  EXPECT_FALSE(Append(w, *f, "second").ok());
  faults.Heal();
  EXPECT_FALSE(Append(w, *f, "third").ok());
  EXPECT_GT(faults.injected(), 0);
  Replayed r = Replay(path);
  ASSERT_EQ(r.records.size(), 1u);
}

// After a failed fsync the kernel may have dropped the dirty pages while the
// file still shows them: the records are cut off and nothing is written again.
TEST(JournalTest, AFailedFsyncIsRolledBackAndSticky) {
  testing::TempDir dir;
  const std::string path = dir / "journal";
  testing::FaultyFileOps faults(dir.path());
  testing::ScopedFileOps installed(&faults);
  auto f = JournalFile::Create(path, kRun);
  ASSERT_TRUE(f.ok());
  JournalWriter w;
  AppendSync(w, *f, "first");
  const uint64_t durable = (*f)->durable_size();
  faults.FailSyncs("journal", EIO);
  auto second = Append(w, *f, "second");
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "fdatasync")) << second.status();
  EXPECT_EQ(FileSize(path), durable);
  faults.Heal();
  EXPECT_FALSE(Append(w, *f, "third").ok());
  EXPECT_EQ(FileSize(path), durable);
}

// The journal's directory entry is synced when it is created.
TEST(JournalTest, ACreatedJournalSurvivesLostDirectoryEntries) {
  testing::TempDir dir;
  testing::FaultyFileOps faults(dir.path());
  testing::ScopedFileOps installed(&faults);
  {
    auto f = JournalFile::Create(dir / "journal", kRun);
    ASSERT_TRUE(f.ok());
    JournalWriter w;
    AppendSync(w, *f, "first");
  }
  faults.LoseUnsyncedEntries();
  Replayed r = Replay(dir / "journal");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records.size(), 1u);
}

TEST(JournalTest, CommitsConcurrentAppendsInGroups) {
  testing::TempDir dir;
  auto f = JournalFile::Create(dir / "journal", kRun);
  ASSERT_TRUE(f.ok());
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
  Replayed r = Replay(dir / "journal");
  EXPECT_EQ(r.records.size(), 2000u);
}

}  // namespace
}  // namespace medeval
