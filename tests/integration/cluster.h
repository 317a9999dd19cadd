// A coordinator and workers as real `medeval` processes on loopback (or
// inside network namespaces), for the distributed-mode tests.
//
// Not thread-safe.
#ifndef MEDEVAL_TESTS_INTEGRATION_CLUSTER_H_
#define MEDEVAL_TESTS_INTEGRATION_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/coordinator_client.h"
#include "tests/testing/test_util.h"

namespace medeval::testing {

class Cluster {
 public:
  explicit Cluster(std::string dir) : dir_(std::move(dir)) {}
  ~Cluster();

  // Starts the coordinator (again, on the same port and state directory, if
  // it ran before). `wrap` prefixes the command (e.g. "ip netns exec NS").
  void StartCoordinator(const std::vector<std::string>& extra = {},
                        const std::vector<std::string>& wrap = {});
  void KillCoordinator(int sig);
  Subprocess& coordinator() { return *coordinator_; }
  // Waits for the coordinator to exit; returns its exit code.
  int WaitCoordinator();

  void StartWorker(const std::string& name, const std::vector<std::string>& args,
                   const std::vector<std::string>& wrap = {},
                   const std::map<std::string, std::string>& env = {});
  Subprocess& worker(const std::string& name) { return *workers_.at(name); }

  // "127.0.0.1:PORT" (or the address given with --listen).
  const std::string& target() const { return target_; }
  int port() const { return port_; }
  // The port the next StartCoordinator listens on (default: one it picks).
  void set_port(int port) {
    port_ = port;
    target_ = "127.0.0.1:" + std::to_string(port);
  }
  const std::string& state_dir() const { return state_dir_; }
  void set_listen_host(const std::string& host) { listen_host_ = host; }

  // Runs `medeval ARGS --coordinator TARGET` to completion.
  int Cli(std::vector<std::string> args, std::string* out, std::string* err,
          const std::vector<std::string>& wrap = {});

  // A gRPC client of the coordinator (from this process).
  CoordinatorClient& client();
  // Polls until the run is done or incomplete.
  bool WaitRunFinished(const std::string& run_id, absl::Duration timeout = absl::Seconds(120));

 private:
  std::string dir_;
  std::string state_dir_;
  std::string listen_host_ = "127.0.0.1";
  std::string target_;
  int port_ = 0;
  std::unique_ptr<Subprocess> coordinator_;
  std::map<std::string, std::unique_ptr<Subprocess>> workers_;
  std::unique_ptr<CoordinatorClient> client_;
};

}  // namespace medeval::testing

#endif  // MEDEVAL_TESTS_INTEGRATION_CLUSTER_H_
