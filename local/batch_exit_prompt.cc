#include "local/batch_exit_prompt.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_ops.h"

namespace medeval {

namespace {

void Say(int fd, const std::string& text) { WriteFully(fd, text.data(), text.size()); }

}  // namespace

bool TerminalBatchExitPrompt::CancelBatches(const std::string& question) {
  const std::string text = absl::StrCat(
      question, "\nCancel them (c), or keep them running for a rerun to collect (k)? [k] ");
  Say(out_fd_, text);
  // Type-ahead (a second key pressed with the Ctrl-C) is not an answer.
  ::tcflush(in_fd_, TCIFLUSH);
  std::string line;
  const absl::Time deadline = absl::Now() + timeout_;
  while (line.find('\n') == std::string::npos) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      Say(out_fd_, "\n(no answer: the batches keep running)\n");
      return false;
    }
    pollfd p{in_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // the deadline decides
    char buf[64];
    const ssize_t n = ::read(in_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of input: keep
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > 256) break;
  }
  const std::string answer =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, line.find('\n'))));
  const bool cancel = answer == "c" || answer == "cancel";
  Say(out_fd_, cancel ? "cancelling the batches\n"
                      : "the batches keep running; the same command collects them\n");
  return cancel;
}

}  // namespace medeval
