// Helpers for medeval's tests: temporary folders, the shared MedBench data,
// real subprocesses of the medeval binary, and small HTTP/JSON readers.
//
// Thread-safety: TempDir and Subprocess are not thread-safe; the free
// functions are.
#ifndef MEDEVAL_TESTS_TESTING_TEST_UTIL_H_
#define MEDEVAL_TESTS_TESTING_TEST_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace medeval::sim {
class SimServer;
}

namespace medeval::testing {

// A fresh folder, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const;

 private:
  std::string path_;
};

// ../shared/medbench/<rel> next to the source tree, or "" when absent (tests
// then skip).
std::string SharedMedbench(const std::string& rel);

// The project's bundled sample suite.
std::string SamplesDir();

// Path of the built medeval executable.
std::string MedevalBinary();

// A child process with stdout and stderr captured to files.
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // kills (SIGKILL) if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts `argv` (argv[0] is the program path) with extra environment
  // variables; output goes to files in `log_dir`.
  void Start(const std::vector<std::string>& argv, const std::string& log_dir,
             const std::map<std::string, std::string>& env = {},
             const std::vector<std::string>& unset_env = {});
  // Waits up to `timeout`; returns the exit code, 128+signal if killed, or -1
  // on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(120));
  void Kill(int sig);
  // The child's stdin (set before Start; default: this process's).
  void set_stdin(int fd) { stdin_fd_ = fd; }
  bool running();
  pid_t pid() const { return pid_; }
  std::string out() const;  // stdout so far
  std::string err() const;  // stderr so far

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string out_path_;
  std::string err_path_;
};

// Runs medeval with `args` to completion; returns the exit code, and fills
// out/err.
int RunMedeval(const std::vector<std::string>& args, const std::string& log_dir, std::string* out,
               std::string* err, const std::map<std::string, std::string>& env = {},
               absl::Duration timeout = absl::Seconds(180));

// Polls `pred` every 20 ms up to `timeout`.
bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(30));

// Kills `run` (SIGKILL) mid-run without a race against its end: `sim` was
// started with `down_after` (and a long `down_for`), so it stops answering
// after that many answers and the run cannot finish. Waits until the outage
// began and the run logged its endpoint down, kills, then ends the outage and
// waits until the sim answers again. False (with a test failure) on timeout.
bool KillDuringOutage(sim::SimServer& sim, Subprocess& run,
                      absl::Duration timeout = absl::Seconds(60));

// Parses a JSONL file (one object per non-blank line).
std::vector<nlohmann::json> ReadJsonl(const std::string& path);

// Blocking HTTP GET/POST through the project's HTTP client.
struct SimpleResponse {
  int status = 0;
  std::string body;
  std::string retry_after;
  std::string error;
};
SimpleResponse HttpCall(const std::string& method, const std::string& url,
                        const std::string& body = "", const std::vector<std::string>& headers = {},
                        absl::Duration timeout = absl::Seconds(10));

// A one-dataset v4 suite of `n` distinct questions "问题 i：请解释。" in
// `dir`/`dataset`.jsonl; SyntheticQuestion(i) is question i's text.
void WriteSyntheticSuite(const std::string& dir, const std::string& dataset, int n);
std::string SyntheticQuestion(int i);

// Writes `contents` to `path`, creating folders.
void WriteText(const std::string& path, const std::string& contents);
std::string ReadText(const std::string& path);

// Real image files for the VLM track: a w x h picture (PNG or JPEG, encoded
// by poppler's writers), and a PDF of `pages` pages of `w` x `h` points,
// page i holding a different drawing. Folders are created.
void WriteImage(const std::string& path, const std::string& format, int w, int h);
void WritePdf(const std::string& path, int pages, int w = 200, int h = 100);
// The bytes of that PDF.
std::string MakePdf(int pages, int w = 200, int h = 100);

// The value of the first sample named `name` whose labels include `labels`
// in a Prometheus text exposition, or nullopt.
std::optional<double> PromValue(const std::string& text, const std::string& name,
                                const std::map<std::string, std::string>& labels = {});

// A free TCP port on 127.0.0.1 (bound and released).
int FreePort();

}  // namespace medeval::testing

#endif  // MEDEVAL_TESTS_TESTING_TEST_UTIL_H_
