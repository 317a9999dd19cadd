#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "absl/base/attributes.h"
#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace medeval {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("MEDEVAL_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  std::string v = absl::AsciiStrToLower(env);
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning" || v == "warn") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

// Constant-initialized, so logging works from any static constructor or destructor.
ABSL_CONST_INIT absl::Mutex sink_mu(absl::kConstInit);

// Never destroyed: threads may still log while statics are torn down at exit.
std::function<void(const std::string&)>& Sink() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sink_mu) {
  static auto* sink = new std::function<void(const std::string&)>();
  return *sink;
}

const char* LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "D";
    case LogLevel::kInfo:
      return "I";
    case LogLevel::kWarning:
      return "W";
    case LogLevel::kError:
      return "E";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Level().load()); }

void SetLogSink(std::function<void(const std::string& line)> sink) {
  absl::MutexLock lock(&sink_mu);
  Sink() = std::move(sink);
}

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  stream_ << LevelTag(level) << ' '
          << absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << ' ';
  if (level_ == LogLevel::kDebug) stream_ << (base ? base + 1 : file) << ':' << line << ' ';
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string s = stream_.str();
  {
    absl::MutexLock lock(&sink_mu);
    if (Sink()) {
      Sink()(s);
      return;
    }
  }
  // One write(2) per line keeps concurrent lines whole.
  ssize_t unused = ::write(STDERR_FILENO, s.data(), s.size());
  (void)unused;
}

}  // namespace medeval
