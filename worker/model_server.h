// A local model server (vLLM, SGLang, llama.cpp server, TGI, medeval sim...)
// started and supervised by a worker: `medeval worker --serve "CMD"`.
//
// CMD runs through /bin/sh in its own process group with "{port}" replaced by
// a free port; its output is forwarded line by line to the worker's stderr
// with a prefix. Ready means GET /health or GET /v1/models answers 200.
// Stopping sends SIGTERM to the whole group and SIGKILL after a grace period
// (tensor-parallel servers fork workers of their own). The environment passes
// through, so CUDA_VISIBLE_DEVICES selects the GPUs.
//
// Thread-safety: Start/Stop/WaitReady from one thread; Running and base_url
// from any.
#ifndef MEDEVAL_WORKER_MODEL_SERVER_H_
#define MEDEVAL_WORKER_MODEL_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace medeval {

struct ServeOptions {
  std::string command;  // shell command; "{port}" becomes the chosen port
  // 0: a free port, chosen at the first start and kept while it stays free
  // (a restart finds another one when it is taken: base_url() changes).
  int port = 0;
  absl::Duration startup_timeout = absl::Minutes(30);  // loading 70B weights takes minutes
  absl::Duration stop_grace = absl::Seconds(30);
  std::string log_prefix = "[serve]";
  std::map<std::string, std::string> env;  // extra variables (e.g. CUDA_VISIBLE_DEVICES)
};

class ModelServer {
 public:
  explicit ModelServer(ServeOptions options);
  ~ModelServer();  // Stop()
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  absl::Status Start();
  // Polls the health endpoints until one answers 200. Fails when the process
  // exits, `timeout` passes or `cancelled` returns true.
  absl::Status WaitReady(absl::Duration timeout, const std::function<bool()>& cancelled);
  // Whether the process is alive (reaps it if it exited).
  bool Running();
  // How the last process ended, e.g. "exited with code 1", "killed by signal 9".
  std::string ExitDescription() const;
  void Stop();

  int port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT/v1

 private:
  void Forward(int fd);

  const ServeOptions options_;
  int port_ = 0;
  std::atomic<pid_t> pid_{-1};
  std::atomic<int> wait_status_{0};
  std::thread forwarder_;
};

// The command with every "{port}" replaced.
std::string SubstitutePort(const std::string& command, int port);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_MODEL_SERVER_H_
