#include "tests/testing/test_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poppler-image.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/suite.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "worker/http_client.h"

#ifndef MEDEVAL_SOURCE_DIR
#error "MEDEVAL_SOURCE_DIR must be defined"
#endif
#ifndef MEDEVAL_BINARY
#error "MEDEVAL_BINARY must be defined"
#endif

namespace medeval::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/medeval-test-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* p = ::mkdtemp(buf.data());
  if (p == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = p ? p : "/tmp";
}

TempDir::~TempDir() {
  if (std::getenv("MEDEVAL_KEEP_TEST_DIRS") == nullptr) RemoveAll(path_).IgnoreError();
}

std::string TempDir::operator/(const std::string& rel) const { return JoinPath(path_, rel); }

std::string SharedMedbench(const std::string& rel) {
  std::string p = JoinPath(JoinPath(MEDEVAL_SOURCE_DIR, "../shared/medbench"), rel);
  return PathExists(p) ? p : "";
}

std::string SamplesDir() { return JoinPath(MEDEVAL_SOURCE_DIR, "samples/medbench-mini"); }

std::string MedevalBinary() { return MEDEVAL_BINARY; }

Subprocess::~Subprocess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

void Subprocess::Start(const std::vector<std::string>& argv, const std::string& log_dir,
                       const std::map<std::string, std::string>& env,
                       const std::vector<std::string>& unset_env) {
  static int counter = 0;
  ++counter;
  out_path_ = JoinPath(log_dir, absl::StrCat("proc-", counter, ".out"));
  err_path_ = JoinPath(log_dir, absl::StrCat("proc-", counter, ".err"));
  pid_ = ::fork();
  if (pid_ == 0) {
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (stdin_fd_ >= 0) ::dup2(stdin_fd_, 0);
    // The test runner may block signals; the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& name : unset_env) ::unsetenv(name.c_str());
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  reaped_ = false;
}

int Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (absl::Now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

void Subprocess::Kill(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

bool Subprocess::running() {
  if (pid_ <= 0 || reaped_) return false;
  pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

std::string Subprocess::out() const { return ReadText(out_path_); }
std::string Subprocess::err() const { return ReadText(err_path_); }

int RunMedeval(const std::vector<std::string>& args, const std::string& log_dir, std::string* out,
               std::string* err, const std::map<std::string, std::string>& env,
               absl::Duration timeout) {
  std::vector<std::string> argv = {MedevalBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p;
  // The old script's variables must not leak in from the developer's shell.
  p.Start(argv, log_dir, env,
          {"MODEL_NAME", "API_URL", "API_TOKEN", "OPENAI_BASE_URL", "OPENAI_API_KEY"});
  int code = p.Wait(timeout);
  if (code == -1) {
    p.Kill(SIGKILL);
    p.Wait();
  }
  if (out) *out = p.out();
  if (err) *err = p.err();
  return code;
}

bool KillDuringOutage(sim::SimServer& sim, Subprocess& run, absl::Duration timeout) {
  const bool seen = WaitFor(
      [&] {
        return nlohmann::json::parse(sim.StatsJson())["down_episodes"].get<int>() >= 1 &&
               absl::StrContains(run.err(), "endpoint down");
      },
      timeout);
  EXPECT_TRUE(seen) << "the run never saw the outage: " << run.err();
  run.Kill(SIGKILL);
  EXPECT_EQ(run.Wait(), 128 + SIGKILL) << run.err();
  sim.GoDown(absl::Milliseconds(1));  // ends the outage now
  const std::string health = absl::StrCat("http://127.0.0.1:", sim.port(), "/health");
  const bool back = WaitFor([&] { return HttpCall("GET", health).status == 200; }, timeout);
  EXPECT_TRUE(back) << "the sim did not come back";
  return seen && back;
}

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::string text = ReadText(path);
  for (absl::string_view line : SplitLines(text)) {
    if (IsBlankLine(line)) continue;
    out.push_back(nlohmann::json::parse(line.begin(), line.end()));
  }
  return out;
}

SimpleResponse HttpCall(const std::string& method, const std::string& url, const std::string& body,
                        const std::vector<std::string>& headers, absl::Duration timeout) {
  HttpClient http(HttpClient::Options{2, timeout});
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  req.headers = headers;
  req.timeout = timeout;
  std::promise<HttpResponse> p;
  http.Send(req, [&p](HttpResponse r) { p.set_value(std::move(r)); });
  HttpResponse r = p.get_future().get();
  return SimpleResponse{r.status, r.body, r.retry_after, r.error};
}

std::string SyntheticQuestion(int i) { return absl::StrCat("问题 ", i, "：请解释。"); }

void WriteSyntheticSuite(const std::string& dir, const std::string& dataset, int n) {
  std::string lines;
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {{"question", SyntheticQuestion(i)},
                        {"answer", ""},
                        {"other", {{"id", i}, {"source", "Synth"}}}};
    absl::StrAppend(&lines, j.dump(), "\n");
  }
  WriteText(JoinPath(dir, dataset + ".jsonl"), lines);
}

void WriteText(const std::string& path, const std::string& contents) {
  ASSERT_TRUE(MakeDirs(DirName(path)).ok());
  ASSERT_TRUE(WriteFileAtomic(path, contents, false).ok()) << path;
}

std::string ReadText(const std::string& path) {
  auto s = ReadFile(path);
  return s.ok() ? *s : "";
}

void WriteImage(const std::string& path, const std::string& format, int w, int h) {
  ASSERT_TRUE(MakeDirs(DirName(path)).ok());
  poppler::image img(w, h, poppler::image::format_argb32);
  ASSERT_TRUE(img.is_valid());
  char* data = img.data();
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      // argb32: 32-bit pixels, in memory B, G, R, A.
      char* px = data + y * img.bytes_per_row() + 4 * x;
      px[0] = static_cast<char>(x * 255 / std::max(1, w - 1));
      px[1] = static_cast<char>(y * 255 / std::max(1, h - 1));
      px[2] = static_cast<char>(128);
      px[3] = static_cast<char>(255);
    }
  }
  ASSERT_TRUE(img.save(path, format)) << path;
}

std::string MakePdf(int pages, int w, int h) {
  // Objects: 1 catalog, 2 page tree, then per page a page and its content.
  std::vector<std::string> objects;
  std::string kids;
  for (int i = 0; i < pages; ++i) absl::StrAppend(&kids, 3 + 2 * i, " 0 R ");
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  objects.push_back(absl::StrCat("<< /Type /Pages /Kids [", kids, "] /Count ", pages, " >>"));
  for (int i = 0; i < pages; ++i) {
    objects.push_back(absl::StrFormat(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R >>", w, h, 4 + 2 * i));
    const std::string draw = absl::StrFormat("%.2f 0.2 0.6 rg %d %d %d %d re f",
                                             0.2 + 0.15 * (i % 5), 10 + 10 * i, 10, w / 3, h / 2);
    objects.push_back(
        absl::StrCat("<< /Length ", draw.size(), " >>\nstream\n", draw, "\nendstream"));
  }
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    absl::StrAppend(&pdf, i + 1, " 0 obj\n", objects[i], "\nendobj\n");
  }
  const size_t xref = pdf.size();
  absl::StrAppend(&pdf, "xref\n0 ", objects.size() + 1, "\n0000000000 65535 f \n");
  for (size_t off : offsets) absl::StrAppend(&pdf, absl::StrFormat("%010d 00000 n \n", off));
  absl::StrAppend(&pdf, "trailer\n<< /Size ", objects.size() + 1, " /Root 1 0 R >>\nstartxref\n",
                  xref, "\n%%EOF\n");
  return pdf;
}

void WritePdf(const std::string& path, int pages, int w, int h) {
  WriteText(path, MakePdf(pages, w, h));
}

std::optional<double> PromValue(const std::string& text, const std::string& name,
                                const std::map<std::string, std::string>& labels) {
  for (absl::string_view line : SplitLines(text)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == absl::string_view::npos || line.substr(0, name_end) != name) continue;
    std::map<std::string, std::string> have;
    size_t at = name_end;
    if (line[at] == '{') {
      const size_t close = line.find('}', at);
      if (close == absl::string_view::npos) continue;
      // name="value" pairs; our label values hold no quotes or commas.
      for (absl::string_view pair : absl::StrSplit(line.substr(at + 1, close - at - 1), ',')) {
        const size_t eq = pair.find('=');
        if (eq == absl::string_view::npos || pair.size() < eq + 3) continue;
        have[std::string(pair.substr(0, eq))] =
            std::string(pair.substr(eq + 2, pair.size() - eq - 3));
      }
      at = close + 1;
    }
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = have.find(k);
      match = match && it != have.end() && it->second == v;
    }
    double value = 0;
    if (match && absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(at)), &value))
      return value;
  }
  return std::nullopt;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

}  // namespace medeval::testing
