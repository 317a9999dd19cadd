// Minimal leveled logging to stderr, one line per message, written atomically
// so lines from many threads never interleave.
//
// Thread-safe. Usage: MEDEVAL_LOG(INFO) << "worker " << name << " connected";
#ifndef MEDEVAL_COMMON_LOG_H_
#define MEDEVAL_COMMON_LOG_H_

#include <functional>
#include <sstream>
#include <string>

namespace medeval {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; MEDEVAL_LOG_LEVEL
// (debug|info|warning|error) in the environment overrides it at start-up.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Where lines go instead of stderr (a live progress display prints them
// above itself); nullptr: back to stderr. The sink is called from any thread
// with one whole line, "\n" included.
void SetLogSink(std::function<void(const std::string& line)> sink);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace medeval

#define MEDEVAL_LOG_LEVEL_DEBUG ::medeval::LogLevel::kDebug
#define MEDEVAL_LOG_LEVEL_INFO ::medeval::LogLevel::kInfo
#define MEDEVAL_LOG_LEVEL_WARNING ::medeval::LogLevel::kWarning
#define MEDEVAL_LOG_LEVEL_ERROR ::medeval::LogLevel::kError

#define MEDEVAL_LOG(severity)                               \
  (MEDEVAL_LOG_LEVEL_##severity < ::medeval::GetLogLevel()) \
      ? (void)0                                             \
      : ::medeval::LogVoidify() &                           \
            ::medeval::LogMessage(MEDEVAL_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()

#endif  // MEDEVAL_COMMON_LOG_H_
