// The Ctrl-C question of `run --batch` on a real pseudo-terminal: what it
// shows, and which answers cancel the batches.
#include "local/batch_exit_prompt.h"

#include <pty.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

class Pty {
 public:
  Pty() { ok_ = ::openpty(&master_, &slave_, nullptr, nullptr, nullptr) == 0; }
  ~Pty() {
    ::close(master_);
    ::close(slave_);
  }
  bool ok() const { return ok_; }
  int slave() const { return slave_; }
  void Type(const std::string& s) { ASSERT_EQ(::write(master_, s.data(), s.size()), s.size()); }

 private:
  int master_ = -1, slave_ = -1;
  bool ok_ = false;
};

struct Answer {
  bool cancel;
  std::string shown;
};

// Asks on the pty's slave; `typed` is typed on the master once the question
// is on screen (the prompt drops what was typed before it).
Answer Ask(const std::string& typed, absl::Duration timeout = absl::Seconds(10)) {
  Pty pty;
  EXPECT_TRUE(pty.ok());
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  TerminalBatchExitPrompt prompt(pty.slave(), pipefd[1], timeout);
  Answer a;
  std::thread screen([&] {
    bool typed_yet = false;
    char buf[256];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) {
      a.shown.append(buf, static_cast<size_t>(n));
      if (!typed_yet && absl::StrContains(a.shown, "[k] ")) {
        typed_yet = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!typed.empty()) pty.Type(typed);
      }
    }
  });
  a.cancel = prompt.CancelBatches("medeval: 1 batch is still running");
  ::close(pipefd[1]);
  screen.join();
  ::close(pipefd[0]);
  return a;
}

TEST(BatchExitPromptTest, CancelOnlyWhenTheUserSaysSo) {
  Answer a = Ask("c\n");
  EXPECT_TRUE(a.cancel);
  EXPECT_TRUE(absl::StrContains(a.shown, "medeval: 1 batch is still running\nCancel them (c)"))
      << a.shown;
  EXPECT_TRUE(absl::StrContains(a.shown, "cancelling the batches")) << a.shown;
  EXPECT_TRUE(Ask("Cancel\n").cancel);
  for (const char* keep : {"k\n", "\n", "no\n", "keep\n"}) {
    Answer k = Ask(keep);
    EXPECT_FALSE(k.cancel) << keep;
    EXPECT_TRUE(absl::StrContains(k.shown, "keep running")) << k.shown;
  }
}

TEST(BatchExitPromptTest, NoAnswerKeepsTheBatches) {
  const absl::Time start = absl::Now();
  Answer a = Ask("", absl::Milliseconds(600));
  EXPECT_FALSE(a.cancel);
  EXPECT_TRUE(absl::StrContains(a.shown, "no answer")) << a.shown;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace medeval
