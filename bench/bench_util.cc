#include "bench/bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/file_util.h"

#ifndef MEDEVAL_BINARY
#error "MEDEVAL_BINARY must be defined"
#endif

namespace medeval::bench {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int WaitChild(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

double CpuSeconds(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long RssBytes(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.substr(6).c_str()) * 1024;
  }
  return 0;
}

std::string MedevalBinary() { return MEDEVAL_BINARY; }

std::string MakeTempDir() {
  std::string tmpl = "/tmp/medeval-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

void WriteSyntheticSuite(const std::string& dir, const std::string& dataset, int n) {
  MakeDirs(dir).IgnoreError();
  std::string text;
  text.reserve(static_cast<size_t>(n) * 96);
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&text, R"({"question": "合成问题 )", i,
                    R"(：请简要回答。", "answer": "", "other": {"id": )", i,
                    R"(, "source": "Synthetic"}})", "\n");
  }
  WriteFileAtomic(JoinPath(dir, dataset + ".jsonl"), text, false).IgnoreError();
}

std::string V4LlmOrSynthetic(const std::string& dir, const std::string& dataset, int n) {
  const std::string real = JoinPath(MEDEVAL_SOURCE_DIR, "../shared/medbench/v4/LLM");
  if (IsDirectory(real)) return real;
  const std::string synthetic = JoinPath(dir, "synthetic");
  WriteSyntheticSuite(synthetic, dataset, n);
  return synthetic;
}

int WaitPort(const std::string& file, pid_t pid, double timeout_s) {
  const double until = bench::NowSeconds() + timeout_s;
  while (bench::NowSeconds() < until) {
    auto text = ReadFile(file);
    int port = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &port)) return port;
    if (::kill(pid, 0) != 0) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return 0;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double IsoToSeconds(const std::string& iso) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", iso, absl::UTCTimeZone(), &t, &err)) return 0;
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

}  // namespace medeval::bench
