// The coordinator's durable record of a run: an append-only file of framed
// records. Every accepted answer is journaled before it is acknowledged; on
// start-up the journal is replayed.
//
// Record format (little-endian):
//   [magic u32][crc u32][length u32][type u8][payload: length bytes]
// The checksum covers length, type and payload, and for every record but the
// first it is seeded with the run id, so a record only validates in the
// journal of its own run. The first record (type kHeader) names the run and
// the format version; a journal naming another run is refused.
//
// Replay keeps every intact record. A damaged region in the middle (a flipped
// byte, a zero-filled block) is skipped by resynchronising on the next magic
// that starts a valid record, and reported with its offset; only a damaged
// region with nothing valid after it (a crash mid-write) is cut off. Journals
// of the earlier unframed format ([length][crc][payload]) are rewritten in
// this format on open.
//
// A failed write or fsync is sticky: the file is cut back to its last durable
// size and every later append fails with the same error.
//
// JournalWriter commits records of many files in groups: one write and one
// fdatasync per touched file per batch, however many records arrived.
//
// Thread-safety: JournalFile::ReadAt is thread-safe; appending goes only
// through a JournalWriter, whose methods are thread-safe. Done callbacks run
// on the writer's thread and must not block for long.
#ifndef MEDEVAL_COORDINATOR_JOURNAL_H_
#define MEDEVAL_COORDINATOR_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace medeval {

// The format written (RunSpec.journal_format of runs created with it).
inline constexpr uint32_t kJournalFormat = 2;

// The largest answer record the coordinator keeps (answer, raw text and
// reasoning together); a larger one is recorded as a failure. Well under the
// journal's record limit.
inline constexpr size_t kMaxAnswerRecordBytes = size_t{64} << 20;

// What replaying a journal found besides its records.
struct JournalReplay {
  uint64_t records = 0;
  uint64_t dropped_tail = 0;  // bytes of a torn tail cut off
  // (offset, length) of damaged regions skipped in the middle of the file.
  std::vector<std::pair<uint64_t, uint64_t>> damaged;
  bool converted = false;  // an earlier-format journal was rewritten
};

class JournalFile {
 public:
  using Visit = std::function<void(uint64_t offset, absl::string_view payload)>;

  // Creates the journal of run `run_id` at `path` (which must not exist) with
  // its header record, on stable storage, its directory entry synced.
  static absl::StatusOr<std::shared_ptr<JournalFile>> Create(const std::string& path,
                                                             const std::string& run_id);
  // Opens the journal of `run_id` and calls `visit(offset, payload)` for each
  // intact record in order. kNotFound when `path` is missing; kDataLoss when
  // it is empty, not a journal, or the journal of another run.
  static absl::StatusOr<std::shared_ptr<JournalFile>> Open(const std::string& path,
                                                           const std::string& run_id,
                                                           const Visit& visit,
                                                           JournalReplay* replay);
  ~JournalFile();
  JournalFile(const JournalFile&) = delete;
  JournalFile& operator=(const JournalFile&) = delete;

  // The payload of the record at `offset` (as given by replay or Append).
  absl::StatusOr<std::string> ReadAt(uint64_t offset) const;
  const std::string& path() const { return path_; }
  // Bytes on stable storage (grows after each committed batch).
  uint64_t durable_size() const { return durable_size_.load(); }

 private:
  friend class JournalWriter;
  JournalFile(std::string path, int fd, uint64_t end, uint32_t seed)
      : path_(std::move(path)), fd_(fd), seed_(seed), end_(end), durable_size_(end) {}
  // Writer thread only.
  uint64_t Buffer(absl::string_view payload);
  absl::Status WriteAndSync();

  const std::string path_;
  const int fd_;
  const uint32_t seed_;  // checksum seed: names the run
  absl::Status failed_;  // sticky write or sync error (writer thread)
  uint64_t end_;         // file size including buffered records (writer thread)
  std::string buffer_;   // records not yet written (writer thread)
  std::atomic<uint64_t> durable_size_;
};

class JournalWriter {
 public:
  using Done = std::function<void(absl::StatusOr<uint64_t> offset)>;

  struct Options {
    // After the first record of a batch arrives, wait this long for more
    // before writing: fewer fsyncs and fewer, larger acknowledgements.
    absl::Duration commit_window = absl::Milliseconds(2);
    size_t max_batch = 4096;
  };

  JournalWriter() : JournalWriter(Options()) {}
  explicit JournalWriter(Options options);
  // Commits what is queued, then stops.
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Queues `payload` for `file`; `done` gets the record's offset once it is on
  // stable storage, or the error.
  void Append(std::shared_ptr<JournalFile> file, std::string payload, Done done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until everything appended before the call was written and synced,
  // or failed (its `done` got the error); its done callbacks have run.
  void Flush() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs on the writer's thread after the done callbacks of each batch (for
  // work that is cheaper done once per batch). Set before the first Append.
  void set_after_batch(std::function<void()> fn) { after_batch_ = std::move(fn); }

  struct Stats {
    uint64_t records = 0;
    uint64_t batches = 0;
  };
  Stats stats() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Item {
    std::shared_ptr<JournalFile> file;
    std::string payload;
    Done done;
  };
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  // Conditions the writer's thread waits for.
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BatchFullOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  std::function<void()> after_batch_;
  // Waiters use Mutex::Await, which re-checks their condition whenever mu_ is
  // released, so there are no condition variables to signal.
  absl::Mutex mu_;
  std::vector<Item> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t committed_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_JOURNAL_H_
