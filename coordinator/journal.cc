#include "coordinator/journal.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/log.h"

namespace medeval {
namespace {

constexpr size_t kHeader = 8;
constexpr uint32_t kMaxRecord = 256u << 20;

uint32_t Crc(absl::string_view data) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

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

}  // namespace

absl::StatusOr<std::shared_ptr<JournalFile>> JournalFile::Open(
    const std::string& path, const std::function<void(uint64_t, absl::string_view)>& visit,
    uint64_t* dropped_bytes) {
  *dropped_bytes = 0;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, path);
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, path);
  }
  // Stream through the file in large chunks; records may span chunks.
  uint64_t good = 0;  // end of the last intact record
  std::string buf;
  uint64_t buf_start = 0;  // file offset of buf[0]
  const uint64_t file_size = static_cast<uint64_t>(size);
  uint64_t read_pos = 0;
  bool torn = false;
  while (!torn) {
    size_t pos = static_cast<size_t>(good - buf_start);
    // Make sure the header and payload of the next record are in the buffer.
    auto ensure = [&](size_t need) -> absl::Status {
      while (buf.size() - pos < need && read_pos < file_size) {
        if (pos > 0) {
          buf.erase(0, pos);
          buf_start += pos;
          pos = 0;
        }
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(file_size - read_pos, 8u << 20));
        size_t old = buf.size();
        buf.resize(old + chunk);
        absl::Status st = PreadAll(fd, &buf[old], chunk, read_pos, path);
        if (!st.ok()) return st;
        read_pos += chunk;
      }
      return absl::OkStatus();
    };
    if (good == file_size) break;
    absl::Status st = ensure(kHeader);
    if (!st.ok()) {
      ::close(fd);
      return st;
    }
    if (buf.size() - pos < kHeader) {
      torn = true;
      break;
    }
    uint32_t len = GetU32(&buf[pos]);
    uint32_t crc = GetU32(&buf[pos + 4]);
    if (len > kMaxRecord) {
      torn = true;
      break;
    }
    st = ensure(kHeader + len);
    if (!st.ok()) {
      ::close(fd);
      return st;
    }
    if (buf.size() - pos < kHeader + len) {
      torn = true;
      break;
    }
    absl::string_view payload(&buf[pos + kHeader], len);
    if (Crc(payload) != crc) {
      torn = true;
      break;
    }
    visit(good, payload);
    good += kHeader + len;
  }
  if (good < file_size) {
    *dropped_bytes = file_size - good;
    MEDEVAL_LOG(WARNING) << path << ": dropped a damaged tail of " << *dropped_bytes
                         << " bytes (an interrupted write)";
    if (::ftruncate(fd, static_cast<off_t>(good)) != 0 || ::fdatasync(fd) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("truncate ", path));
    }
  }
  return std::shared_ptr<JournalFile>(new JournalFile(path, fd, good));
}

JournalFile::~JournalFile() { ::close(fd_); }

absl::StatusOr<std::string> JournalFile::ReadAt(uint64_t offset) const {
  char header[kHeader];
  absl::Status st = PreadAll(fd_, header, kHeader, offset, path_);
  if (!st.ok()) return st;
  uint32_t len = GetU32(header);
  uint32_t crc = GetU32(header + 4);
  if (len > kMaxRecord) {
    return absl::DataLossError(absl::StrCat(path_, ": bad record length at offset ", offset));
  }
  std::string payload(len, '\0');
  st = PreadAll(fd_, payload.data(), len, offset + kHeader, path_);
  if (!st.ok()) return st;
  if (Crc(payload) != crc) {
    return absl::DataLossError(absl::StrCat(path_, ": checksum mismatch at offset ", offset));
  }
  return payload;
}

uint64_t JournalFile::Buffer(absl::string_view payload) {
  uint64_t offset = end_;
  PutU32(&buffer_, static_cast<uint32_t>(payload.size()));
  PutU32(&buffer_, Crc(payload));
  buffer_.append(payload.data(), payload.size());
  end_ += kHeader + payload.size();
  return offset;
}

absl::Status JournalFile::WriteAndSync() {
  uint64_t offset = end_ - buffer_.size();
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::pwrite(fd_, buffer_.data() + done, buffer_.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      // Forget the unwritten records so the file and end_ stay consistent.
      end_ = offset + done;
      buffer_.clear();
      return ErrnoStatus(err, absl::StrCat("write ", path_));
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, absl::StrCat("fdatasync ", path_));
  durable_size_.store(end_);
  return absl::OkStatus();
}

JournalWriter::JournalWriter(Options options) : options_(options), thread_([this] { Loop(); }) {}

JournalWriter::~JournalWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void JournalWriter::Append(std::shared_ptr<JournalFile> file, std::string payload, Done done) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({std::move(file), std::move(payload), std::move(done)});
    ++queued_seq_;
    // The writer needs waking for the first record of a batch and for a full
    // one; in between it is either busy or waiting out the commit window.
    wake = queue_.size() == 1 || queue_.size() >= options_.max_batch;
  }
  if (wake) cv_.notify_one();
}

void JournalWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = queued_seq_;
  done_cv_.wait(lock, [&] { return committed_seq_ >= target; });
}

JournalWriter::Stats JournalWriter::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void JournalWriter::Loop() {
  while (true) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      // Group commit: give concurrent appends a moment to join this batch.
      cv_.wait_for(lock, absl::ToChronoMicroseconds(options_.commit_window),
                   [this] { return stopping_ || queue_.size() >= options_.max_batch; });
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
      std::lock_guard<std::mutex> lock(mu_);
      committed_seq_ += batch.size();
      stats_.records += batch.size();
      ++stats_.batches;
    }
    done_cv_.notify_all();
  }
}

}  // namespace medeval
