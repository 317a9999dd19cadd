#include "worker/model_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/log.h"
#include "worker/http_client.h"

namespace medeval {
namespace {

int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Whether a server could listen on `port` of the loopback now (a socket in
// TIME_WAIT does not count: servers bind with SO_REUSEADDR).
bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

int HttpGetStatus(HttpClient* http, const std::string& url) {
  HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.timeout = absl::Seconds(5);
  std::promise<int> p;
  http->Send(req, [&p](HttpResponse r) { p.set_value(r.status); });
  return p.get_future().get();
}

}  // namespace

std::string SubstitutePort(const std::string& command, int port) {
  return absl::StrReplaceAll(command, {{"{port}", absl::StrCat(port)}});
}

ModelServer::ModelServer(ServeOptions options) : options_(std::move(options)) {}

ModelServer::~ModelServer() { Stop(); }

std::string ModelServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_, "/v1");
}

absl::Status ModelServer::Start() {
  if (options_.command.empty()) return absl::InvalidArgumentError("--serve needs a command");
  if (port_ == 0) port_ = options_.port > 0 ? options_.port : PickFreePort();
  if (options_.port == 0 && !PortFree(port_)) {
    // A port we chose is taken since (another process, or a child of the
    // old server that lives on): restart elsewhere; base_url() moves along.
    const int taken = port_;
    port_ = PickFreePort();
    MEDEVAL_LOG(WARNING) << "port " << taken << " is taken now; the model server moves to port "
                         << port_;
  }
  if (port_ == 0) return absl::UnavailableError("no free port for the model server");
  const std::string cmd = SubstitutePort(options_.command, port_);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: stopping reaches every process it forks
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : options_.env) ::setenv(k.c_str(), v.c_str(), 1);
    ::setenv("MEDEVAL_SERVE_PORT", absl::StrCat(port_).c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(pipefd[1]);
  pid_ = pid;
  wait_status_ = 0;
  if (forwarder_.joinable()) forwarder_.join();
  forwarder_ = std::thread([this, fd = pipefd[0]] { Forward(fd); });
  MEDEVAL_LOG(INFO) << "started the model server (pid " << pid << ", port " << port_
                    << "): " << cmd;
  return absl::OkStatus();
}

void ModelServer::Forward(int fd) {
  std::string buf;
  char chunk[4096];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = absl::StrCat(options_.log_prefix, " ", buf.substr(0, nl), "\n");
      ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
      (void)unused;
      buf.erase(0, nl + 1);
    }
  }
  if (!buf.empty()) {
    std::string line = absl::StrCat(options_.log_prefix, " ", buf, "\n");
    ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
    (void)unused;
  }
  ::close(fd);
}

bool ModelServer::Running() {
  pid_t pid = pid_.load();
  if (pid <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    wait_status_ = status;
    pid_ = -1;
    // Whatever it forked goes with it.
    ::kill(-pid, SIGKILL);
    return false;
  }
  return true;
}

std::string ModelServer::ExitDescription() const {
  int s = wait_status_.load();
  if (WIFEXITED(s)) return absl::StrCat("exited with code ", WEXITSTATUS(s));
  if (WIFSIGNALED(s)) return absl::StrCat("killed by signal ", WTERMSIG(s));
  return "ended";
}

absl::Status ModelServer::WaitReady(absl::Duration timeout,
                                    const std::function<bool()>& cancelled) {
  HttpClient http(HttpClient::Options{2, absl::Seconds(5)});
  const absl::Time start = absl::Now();
  absl::Time next_note = start + absl::Seconds(30);
  const std::string origin = absl::StrCat("http://127.0.0.1:", port_);
  while (true) {
    if (!Running()) {
      return absl::UnavailableError(
          absl::StrCat("the model server ", ExitDescription(), " before it was ready"));
    }
    for (const char* path : {"/health", "/v1/models"}) {
      if (HttpGetStatus(&http, origin + path) == 200) {
        MEDEVAL_LOG(INFO) << "the model server is ready after "
                          << absl::FormatDuration(
                                 absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
        return absl::OkStatus();
      }
    }
    if (cancelled && cancelled()) return absl::CancelledError("stopped while waiting");
    const absl::Time now = absl::Now();
    if (now - start > timeout) {
      return absl::DeadlineExceededError(
          absl::StrCat("the model server was not ready within ", absl::FormatDuration(timeout)));
    }
    if (now > next_note) {
      MEDEVAL_LOG(INFO) << "still waiting for the model server to load ("
                        << absl::FormatDuration(absl::Trunc(now - start, absl::Seconds(1))) << ")";
      next_note = now + absl::Seconds(30);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void ModelServer::Stop() {
  pid_t pid = pid_.load();
  if (pid > 0) {
    ::kill(-pid, SIGTERM);
    const absl::Time deadline = absl::Now() + options_.stop_grace;
    while (Running() && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (Running()) {
      MEDEVAL_LOG(WARNING) << "the model server ignored SIGTERM for "
                           << absl::FormatDuration(options_.stop_grace) << "; killing it";
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid_ = -1;
    }
  }
  if (forwarder_.joinable()) forwarder_.join();
}

}  // namespace medeval
