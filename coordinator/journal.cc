#include "coordinator/journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/file_ops.h"
#include "common/file_util.h"
#include "common/log.h"

namespace medeval {
namespace {

// 0xFE and 0xF7 never occur in UTF-8, so answer text cannot spell the magic.
constexpr char kMagic[4] = {'\xFE', 'M', 'J', '\xF7'};
constexpr size_t kHeader = 13;  // magic, crc, length, type
constexpr uint32_t kMaxRecord = 256u << 20;
constexpr uint8_t kTypeHeader = 0x21;  // the type byte carries the format version (2)
constexpr uint8_t kTypeEntry = 0x22;
constexpr char kHeaderText[] = "medeval journal v2\nrun ";

// The earlier format: [u32 length][u32 crc32(payload)][payload].
constexpr size_t kLegacyHeader = 8;

uint32_t Crc(uint32_t seed, absl::string_view data) {
  return static_cast<uint32_t>(
      crc32(seed, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t RecordCrc(uint32_t seed, const char* len_and_type, absl::string_view payload) {
  return Crc(Crc(seed, absl::string_view(len_and_type, 5)), payload);
}

void AppendRecord(std::string* out, uint32_t seed, uint8_t type, absl::string_view payload) {
  std::string lt;
  PutU32(&lt, static_cast<uint32_t>(payload.size()));
  lt.push_back(static_cast<char>(type));
  out->append(kMagic, 4);
  PutU32(out, RecordCrc(seed, lt.data(), payload));
  out->append(lt);
  out->append(payload.data(), payload.size());
}

uint32_t RunSeed(const std::string& run_id) { return Crc(0, run_id); }

absl::Status PreadAll(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, path);
    }
    if (r == 0) return absl::DataLossError(absl::StrCat(path, ": record past the end of file"));
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

// A read-only view of a whole file.
class Mapping {
 public:
  explicit Mapping(int fd, size_t size) : size_(size) {
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) data_ = static_cast<const char*>(p);
    }
  }
  ~Mapping() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  bool ok() const { return size_ == 0 || data_ != nullptr; }
  absl::string_view view() const { return absl::string_view(data_, data_ ? size_ : 0); }

 private:
  const size_t size_;
  const char* data_ = nullptr;
};

// A valid record at `pos` of `file` (seeded with `seed`, or 0 for the
// header): its type and payload.
bool ParseAt(absl::string_view file, size_t pos, uint32_t seed, uint8_t* type,
             absl::string_view* payload) {
  if (file.size() - pos < kHeader || std::memcmp(file.data() + pos, kMagic, 4) != 0) return false;
  const char* h = file.data() + pos;
  const uint32_t len = GetU32(h + 8);
  if (len > kMaxRecord || file.size() - pos - kHeader < len) return false;
  const uint8_t t = static_cast<uint8_t>(h[12]);
  absl::string_view p(h + kHeader, len);
  const uint32_t want = t == kTypeHeader ? 0 : seed;
  if (RecordCrc(want, h + 8, p) != GetU32(h + 4)) return false;
  *type = t;
  *payload = p;
  return true;
}

// Whether `file` starts with a record of the earlier format. Its records are
// never empty (every entry sets a field), so zeros are not taken for one.
bool LooksLegacy(absl::string_view file) {
  if (file.size() < kLegacyHeader) return false;
  const uint32_t len = GetU32(file.data());
  if (len == 0 || len > kMaxRecord || file.size() - kLegacyHeader < len) return false;
  return Crc(0, file.substr(kLegacyHeader, len)) == GetU32(file.data() + 4);
}

absl::Status SyncAndClose(int fd, const std::string& path) {
  if (Files().Fsync(fd) != 0) {
    int err = errno;
    Files().Close(fd);
    return ErrnoStatus(err, absl::StrCat("fsync ", path));
  }
  if (Files().Close(fd) != 0) return ErrnoStatus(errno, path);
  return absl::OkStatus();
}

// Rewrites an earlier-format journal in this format: its intact records, in
// order (that format cannot tell a damaged middle from a torn tail, so
// reading stops at the first bad record, as it always did).
absl::Status ConvertLegacy(const std::string& path, absl::string_view file,
                           const std::string& run_id, uint64_t* dropped) {
  const uint32_t seed = RunSeed(run_id);
  const std::string tmp = absl::StrCat(path, ".v2.tmp");
  int fd = Files().Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, tmp);
  std::string buf;
  AppendRecord(&buf, 0, kTypeHeader, absl::StrCat(kHeaderText, run_id, "\n"));
  size_t pos = 0;
  while (file.size() - pos >= kLegacyHeader) {
    const uint32_t len = GetU32(file.data() + pos);
    if (len == 0 || len > kMaxRecord || file.size() - pos - kLegacyHeader < len) break;
    absl::string_view payload = file.substr(pos + kLegacyHeader, len);
    if (Crc(0, payload) != GetU32(file.data() + pos + 4)) break;
    AppendRecord(&buf, seed, kTypeEntry, payload);
    pos += kLegacyHeader + len;
    if (buf.size() >= (8u << 20)) {
      if (!WriteFully(fd, buf.data(), buf.size())) {
        int err = errno;
        Files().Close(fd);
        Files().Unlink(tmp.c_str());
        return ErrnoStatus(err, absl::StrCat("write ", tmp));
      }
      buf.clear();
    }
  }
  *dropped = file.size() - pos;
  if (!WriteFully(fd, buf.data(), buf.size())) {
    int err = errno;
    Files().Close(fd);
    Files().Unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("write ", tmp));
  }
  absl::Status st = SyncAndClose(fd, tmp);
  if (st.ok() && Files().Rename(tmp.c_str(), path.c_str()) != 0) {
    st = ErrnoStatus(errno, absl::StrCat("rename to ", path));
  }
  if (!st.ok()) {
    Files().Unlink(tmp.c_str());
    return st;
  }
  return SyncDir(DirName(path));
}

}  // namespace

absl::StatusOr<std::shared_ptr<JournalFile>> JournalFile::Create(const std::string& path,
                                                                 const std::string& run_id) {
  int fd = Files().Open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, path);
  std::string header;
  AppendRecord(&header, 0, kTypeHeader, absl::StrCat(kHeaderText, run_id, "\n"));
  if (!WriteFully(fd, header.data(), header.size()) || Files().Fsync(fd) != 0) {
    int err = errno;
    Files().Close(fd);
    Files().Unlink(path.c_str());
    return ErrnoStatus(err, absl::StrCat("write ", path));
  }
  absl::Status st = SyncDir(DirName(path));
  if (!st.ok()) {
    Files().Close(fd);
    return st;
  }
  return std::shared_ptr<JournalFile>(new JournalFile(path, fd, header.size(), RunSeed(run_id)));
}

absl::StatusOr<std::shared_ptr<JournalFile>> JournalFile::Open(const std::string& path,
                                                               const std::string& run_id,
                                                               const Visit& visit,
                                                               JournalReplay* replay) {
  *replay = JournalReplay();
  const uint32_t seed = RunSeed(run_id);
  int fd = Files().Open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, path);
  auto fail = [&](absl::Status st) {
    Files().Close(fd);
    return st;
  };
  for (int pass = 0; pass < 2; ++pass) {
    struct stat sb;
    if (::fstat(fd, &sb) != 0) return fail(ErrnoStatus(errno, path));
    const size_t size = static_cast<size_t>(sb.st_size);
    if (size == 0) {
      return fail(absl::DataLossError(
          absl::StrCat(path, ": the journal is empty (its header and any answers are lost)")));
    }
    Mapping map(fd, size);
    if (!map.ok()) return fail(ErrnoStatus(errno, absl::StrCat("mmap ", path)));
    const absl::string_view file = map.view();
    if (std::memcmp(file.data(), kMagic, std::min<size_t>(4, size)) != 0 && LooksLegacy(file)) {
      if (pass > 0) return fail(absl::InternalError(absl::StrCat(path, ": conversion failed")));
      uint64_t dropped = 0;
      absl::Status st = ConvertLegacy(path, file, run_id, &dropped);
      if (!st.ok()) return fail(st);
      MEDEVAL_LOG(WARNING) << path << ": rewrote a journal of the earlier format"
                           << (dropped > 0 ? absl::StrCat(" (", dropped,
                                                          " bytes after its last intact record "
                                                          "were left out)")
                                           : "");
      replay->converted = true;
      replay->dropped_tail = dropped;
      Files().Close(fd);
      fd = Files().Open(path.c_str(), O_RDWR | O_CLOEXEC, 0);
      if (fd < 0) return ErrnoStatus(errno, path);
      continue;
    }
    size_t pos = 0;
    size_t good_end = 0;  // end of the last intact record
    bool header_seen = false;
    while (pos < size) {
      uint8_t type = 0;
      absl::string_view payload;
      if (ParseAt(file, pos, seed, &type, &payload)) {
        if (type == kTypeHeader) {
          if (!absl::StartsWith(payload, kHeaderText)) {
            return fail(absl::DataLossError(
                absl::StrCat(path, ": a journal of an unknown format at offset ", pos)));
          }
          absl::string_view owner = payload.substr(sizeof(kHeaderText) - 1);
          if (!owner.empty() && owner.back() == '\n') owner.remove_suffix(1);
          if (owner != run_id) {
            return fail(absl::DataLossError(
                absl::StrCat(path, ": the journal belongs to run ", owner, ", not to run ", run_id,
                             " (copied from another run?); refusing to use it")));
          }
          header_seen = true;
        } else if (type == kTypeEntry) {
          visit(pos, payload);
          ++replay->records;
        }  // other types: a later format's records this version ignores
        pos += kHeader + payload.size();
        good_end = pos;
        continue;
      }
      // Damaged here: look for the next valid record.
      size_t next = pos + 1;
      bool found = false;
      while (next < size) {
        const void* m = std::memchr(file.data() + next, kMagic[0], size - next);
        if (m == nullptr) break;
        next = static_cast<size_t>(static_cast<const char*>(m) - file.data());
        if (ParseAt(file, next, seed, &type, &payload)) {
          found = true;
          break;
        }
        ++next;
      }
      if (!found) break;  // a torn tail
      MEDEVAL_LOG(WARNING) << path << ": skipped " << next - pos << " damaged bytes at offset "
                           << pos << "; the answers recorded there are asked again";
      replay->damaged.emplace_back(pos, next - pos);
      pos = next;
    }
    if (!header_seen && replay->records == 0) {
      return fail(absl::DataLossError(absl::StrCat(path, ": not a medeval journal of run ", run_id,
                                                   " (no intact record in ", size, " bytes)")));
    }
    if (good_end < size) {
      replay->dropped_tail += size - good_end;
      MEDEVAL_LOG(WARNING) << path << ": dropped a damaged tail of " << size - good_end
                           << " bytes at offset " << good_end << " (an interrupted write)";
      if (Files().Ftruncate(fd, static_cast<off_t>(good_end)) != 0 || Files().Fsync(fd) != 0) {
        return fail(ErrnoStatus(errno, absl::StrCat("truncate ", path)));
      }
    }
    return std::shared_ptr<JournalFile>(new JournalFile(path, fd, good_end, seed));
  }
  return fail(absl::InternalError(absl::StrCat(path, ": cannot read")));
}

JournalFile::~JournalFile() { Files().Close(fd_); }

absl::StatusOr<std::string> JournalFile::ReadAt(uint64_t offset) const {
  char header[kHeader];
  absl::Status st = PreadAll(fd_, header, kHeader, offset, path_);
  if (!st.ok()) return st;
  const uint32_t len = GetU32(header + 8);
  if (std::memcmp(header, kMagic, 4) != 0 || len > kMaxRecord ||
      static_cast<uint8_t>(header[12]) != kTypeEntry) {
    return absl::DataLossError(absl::StrCat(path_, ": no record at offset ", offset));
  }
  std::string payload(len, '\0');
  st = PreadAll(fd_, payload.data(), len, offset + kHeader, path_);
  if (!st.ok()) return st;
  if (RecordCrc(seed_, header + 8, payload) != GetU32(header + 4)) {
    return absl::DataLossError(absl::StrCat(path_, ": checksum mismatch at offset ", offset));
  }
  return payload;
}

uint64_t JournalFile::Buffer(absl::string_view payload) {
  uint64_t offset = end_;
  AppendRecord(&buffer_, seed_, kTypeEntry, payload);
  end_ = offset + kHeader + payload.size();
  return offset;
}

absl::Status JournalFile::WriteAndSync() {
  const uint64_t durable = durable_size_.load();
  if (failed_.ok()) {
    absl::Status st;
    if (!PwriteFully(fd_, buffer_.data(), buffer_.size(), static_cast<off_t>(durable))) {
      st = ErrnoStatus(errno, absl::StrCat("write ", path_));
    } else if (Files().Fdatasync(fd_) != 0) {
      st = ErrnoStatus(errno, absl::StrCat("fdatasync ", path_));
    }
    if (st.ok()) {
      buffer_.clear();
      durable_size_.store(end_);
      return st;
    }
    // Whatever reached the file after the last durable record may be partial
    // or (after a failed fsync) silently lost: cut it off, and never write
    // again, because the kernel may have dropped pages this file still shows.
    if (Files().Ftruncate(fd_, static_cast<off_t>(durable)) != 0) {
      MEDEVAL_LOG(ERROR) << path_ << ": cannot cut back to " << durable
                         << " bytes after a failed write: " << std::strerror(errno);
    } else {
      Files().Fdatasync(fd_);
    }
    failed_ = st;
  }
  buffer_.clear();
  end_ = durable;
  return failed_;
}

JournalWriter::JournalWriter(Options options) : options_(options), thread_([this] { Loop(); }) {}

JournalWriter::~JournalWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void JournalWriter::Append(std::shared_ptr<JournalFile> file, std::string payload, Done done) {
  // Releasing mu_ wakes the writer if this record completes what it awaits: the
  // first record of a batch, or a full one.
  absl::MutexLock lock(&mu_);
  queue_.push_back({std::move(file), std::move(payload), std::move(done)});
  ++queued_seq_;
}

void JournalWriter::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = queued_seq_;
  auto committed = [this, target]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return committed_seq_ >= target; };
  mu_.Await(absl::Condition(&committed));
}

JournalWriter::Stats JournalWriter::stats() {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool JournalWriter::HasWorkOrStopping() const { return stopping_ || !queue_.empty(); }

bool JournalWriter::BatchFullOrStopping() const {
  return stopping_ || queue_.size() >= options_.max_batch;
}

void JournalWriter::Loop() {
  while (true) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &JournalWriter::HasWorkOrStopping));
      if (queue_.empty()) return;
      // Group commit: give concurrent appends a moment to join this batch.
      mu_.AwaitWithTimeout(absl::Condition(this, &JournalWriter::BatchFullOrStopping),
                           options_.commit_window);
      batch.swap(queue_);
    }
    std::vector<uint64_t> offsets(batch.size());
    std::vector<JournalFile*> touched;
    absl::flat_hash_set<JournalFile*> seen;
    for (size_t i = 0; i < batch.size(); ++i) {
      offsets[i] = batch[i].file->Buffer(batch[i].payload);
      if (seen.insert(batch[i].file.get()).second) touched.push_back(batch[i].file.get());
    }
    absl::flat_hash_map<JournalFile*, absl::Status> results;
    for (JournalFile* f : touched) {
      absl::Status st = f->WriteAndSync();
      if (!st.ok()) MEDEVAL_LOG(ERROR) << "journal: " << st.message();
      results.emplace(f, std::move(st));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const absl::Status& st = results[batch[i].file.get()];
      if (st.ok()) {
        batch[i].done(offsets[i]);
      } else {
        batch[i].done(st);
      }
    }
    if (after_batch_) after_batch_();
    {
      absl::MutexLock lock(&mu_);
      committed_seq_ += batch.size();
      stats_.records += batch.size();
      ++stats_.batches;
    }
  }
}

}  // namespace medeval
